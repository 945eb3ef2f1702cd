import { hostname } from 'node:os';
import Anthropic from '@anthropic-ai/sdk';
import { SessionToolRunner, WorkPoller } from '@anthropic-ai/sdk/helpers/beta/environments';
import type { BetaRunnableTool } from '@anthropic-ai/sdk/lib/tools/BetaRunnableTool';
import { createStatebox, type Sandbox, type Statebox } from '@statebox/core';
import { describeError, type RunnerEvent } from './events.js';
import { holdLease, type Lease, sessionsTokenFromSecret } from './lease.js';
import { type MemoryStoreResource, MountedMemoryStore, syncMemoryStore } from './memory.js';
import { Semaphore } from './semaphore.js';
import {
  acquireSessionSandbox,
  ENVIRONMENT_LABEL,
  findSessionSandbox,
  releaseSandbox,
  SESSION_LABEL,
} from './session-sandbox.js';
import { installSkills, type SkillReference } from './skills.js';
import { copyBashState, createToolset } from './tools/index.js';

export type RunnerOptions = {
  environmentId: string;
  /** The environment key (`sk-ant-oat01-…`) from the Console: polls the queue and answers sessions. */
  environmentKey: string;
  /** API base URL. Default: `ANTHROPIC_BASE_URL`, else the SDK's. */
  baseURL?: string;
  /** Where sandboxes live. Default: the configured statebox (config file, `STATEBOX_PROVIDER`, or local). */
  statebox?: Statebox;
  /** Sessions served at once. Default 4. */
  concurrency?: number;
  /**
   * A session idle (its turn ended, nothing outstanding) for this long is released: the runner stops
   * serving it and suspends its sandbox. Its next message queues new work, which resumes the sandbox.
   * Default 60 000 ms.
   */
  idleMs?: number;
  /** What happens to the sandbox of a terminated or archived session. Default `'destroy'`. */
  terminatedSandbox?: 'destroy' | 'suspend' | 'keep';
  /** Sandbox working directory, where skills land (`<workdir>/skills/<name>`). Default `/workspace`. */
  workdir?: string;
  /** How often memory stores are synced back while a session runs. Default 15 000 ms; `null` disables memory. */
  memorySyncIntervalMs?: number | null;
  /** Default per-call timeout of the bash tool. Default 120 000 ms. */
  toolTimeoutMs?: number;
  /** Extra tools (custom tools declared on the agent), built per session. */
  customTools?: (context: { sessionId: string; sandbox: () => Promise<Sandbox> }) => BetaRunnableTool[];
  /** Progress: every claim, sandbox start, tool call, suspend and stop. */
  onEvent?: (event: RunnerEvent) => void;
  /** `Anthropic-Worker-ID`. Default `<hostname>-<pid>`. */
  workerId?: string;
  /**
   * How often the runner sweeps the environment's sandboxes: a terminated or archived session's sandbox
   * gets the `terminatedSandbox` policy, and a running sandbox that no runner serves (its runner crashed)
   * is suspended. Default 60 000 ms; `null` disables the sweep.
   */
  janitorIntervalMs?: number | null;
  /** Poll tuning (tests use small values). */
  pollBlockMs?: number | null;
  reclaimOlderThanMs?: number | null;
};

const DRAIN_TIMEOUT_MS = 30_000;

type ActiveSession = {
  workId: string;
  sessionId: string;
  controller: AbortController;
  inFlight: number;
  drained: () => Promise<void>;
};

/**
 * A Claude Managed Agents self-hosted environment worker whose sandboxes are statebox sandboxes.
 *
 * For each work item it holds the lease, finds the session's sandbox through provider labels (resuming,
 * forking or creating it), installs skills and mounts memory stores inside it, and answers the session's
 * tool calls there until the session idles; then it suspends the sandbox and stops the item. Nothing is
 * kept locally, so a restarted runner, or a replica on another machine, carries on from the provider.
 */
export class Runner {
  readonly #options: Required<
    Pick<
      RunnerOptions,
      'concurrency' | 'idleMs' | 'terminatedSandbox' | 'workdir' | 'toolTimeoutMs' | 'workerId'
    >
  > &
    RunnerOptions;
  readonly #client: Anthropic;
  readonly #statebox: Statebox;
  readonly #active = new Map<string, ActiveSession>();
  /** Sessions claimed by this runner, from the claim until their sandbox is released. */
  readonly #claimed = new Set<string>();
  readonly #stopping = new AbortController();
  #running: Promise<void> | undefined;

  constructor(options: RunnerOptions) {
    this.#options = {
      concurrency: 4,
      idleMs: 60_000,
      terminatedSandbox: 'destroy',
      workdir: '/workspace',
      toolTimeoutMs: 120_000,
      workerId: `${hostname()}-${process.pid}`,
      ...options,
    };
    this.#client = this.#clientFor(options.environmentKey);
    this.#statebox = options.statebox ?? createStatebox();
  }

  /** Sessions being served right now. */
  get activeSessions(): string[] {
    return [...this.#active.values()].map((session) => session.sessionId);
  }

  /** Polls and serves work until `shutdown()` or the signal. */
  run(signal?: AbortSignal): Promise<void> {
    signal?.addEventListener('abort', () => void this.shutdown(), { once: true });
    this.#running ??= this.#loop();
    return this.#running;
  }

  /**
   * Graceful stop (wire it to SIGTERM/SIGINT): claim nothing more, let the tools in flight finish
   * (up to 30 s) so each result is posted once, then suspend every sandbox and stop every work item.
   */
  async shutdown(): Promise<void> {
    if (!this.#stopping.signal.aborted) {
      this.#emit({ type: 'runner.stopping', sessions: this.activeSessions });
      this.#stopping.abort();
      await Promise.all(
        [...this.#active.values()].map(async (session) => {
          await Promise.race([session.drained(), delay(DRAIN_TIMEOUT_MS)]);
          session.controller.abort();
        }),
      );
    }
    await this.#running;
  }

  async #loop(): Promise<void> {
    const poller = new WorkPoller({
      client: this.#client,
      environmentId: this.#options.environmentId,
      environmentKey: this.#options.environmentKey,
      workerId: this.#options.workerId,
      signal: this.#stopping.signal,
      autoStop: false,
      ...(this.#options.pollBlockMs !== undefined && { blockMs: this.#options.pollBlockMs }),
      ...(this.#options.reclaimOlderThanMs !== undefined && {
        reclaimOlderThanMs: this.#options.reclaimOlderThanMs,
      }),
    });
    const janitor = this.#startJanitor();
    const slots = new Semaphore(this.#options.concurrency);
    const handlers = new Set<Promise<void>>();
    const iterator = poller[Symbol.asyncIterator]();
    this.#emit({
      type: 'runner.started',
      environmentId: this.#options.environmentId,
      workerId: this.#options.workerId,
    });
    try {
      while (!this.#stopping.signal.aborted) {
        await slots.acquire();
        let next: IteratorResult<Awaited<ReturnType<typeof iterator.next>>['value']>;
        try {
          next = await iterator.next();
        } catch (error) {
          slots.release();
          if (this.#stopping.signal.aborted) break;
          throw error;
        }
        if (next.done) {
          slots.release();
          break;
        }
        const handler = this.#handle(next.value as WorkItem)
          .catch((error) => this.#emit({ type: 'error', message: describeError(error) }))
          .finally(() => {
            slots.release();
            handlers.delete(handler);
          });
        handlers.add(handler);
      }
    } finally {
      janitor.stop();
      await iterator.return?.();
      await Promise.all(handlers);
      await janitor.idle();
      this.#emit({ type: 'runner.stopped' });
    }
  }

  /**
   * One sweep over this environment's sandboxes (see `janitorIntervalMs`). Sessions this runner is
   * serving are left alone. Public so an operator can run it on demand.
   */
  async sweep(): Promise<void> {
    const served = new Set([...this.activeSessions, ...this.#claimed]);
    const sandboxes = await this.#statebox.list({
      labels: { [ENVIRONMENT_LABEL]: this.#options.environmentId },
    });
    for (const sandbox of sandboxes) {
      const sessionId = sandbox.labels[SESSION_LABEL];
      if (!sessionId || served.has(sessionId)) continue;
      const session = await this.#client.beta.sessions
        .retrieve(sessionId)
        .catch((error: { status?: number }) =>
          error.status === 404 ? ({ status: 'terminated' } as const) : undefined,
        );
      if (!session) continue;
      if (session.status === 'terminated') {
        if (this.#options.terminatedSandbox !== 'keep' || sandbox.status === 'running') {
          await this.#release(sandbox, sessionId, 'terminated');
        }
      } else if (sandbox.status === 'running' && session.status === 'idle') {
        await this.#release(sandbox, sessionId, 'idle');
      }
    }
  }

  #startJanitor(): { stop(): void; idle(): Promise<void> } {
    const interval = this.#options.janitorIntervalMs === undefined ? 60_000 : this.#options.janitorIntervalMs;
    let current: Promise<void> = Promise.resolve();
    if (interval === null) return { stop: () => undefined, idle: () => current };
    const run = () => {
      current = this.sweep().catch((error) =>
        this.#emit({ type: 'error', message: `sweep: ${describeError(error)}` }),
      );
    };
    run();
    const timer = setInterval(run, interval);
    timer.unref();
    return { stop: () => clearInterval(timer), idle: () => current };
  }

  async #handle(work: WorkItem): Promise<void> {
    const credential = sessionsTokenFromSecret(work.secret) ?? this.#options.environmentKey;
    const client = this.#clientFor(credential);
    const lease = holdLease(client, { id: work.id, environmentId: work.environment_id }, (end, detail) => {
      if (end !== 'released') this.#emit({ type: 'lease.ended', workId: work.id, end, detail });
    });
    let sessionId: string | undefined;
    let outcome: 'idle' | 'terminated' | 'shutdown' | 'lost' = 'idle';
    let sandbox: Sandbox | undefined;
    try {
      if (work.data.type !== 'session') return;
      sessionId = work.data.id;
      this.#claimed.add(sessionId);
      this.#emit({ type: 'work.claimed', workId: work.id, sessionId });
      const session = await client.beta.sessions.retrieve(sessionId, {}, { signal: lease.signal });
      if (session.status === 'terminated') {
        outcome = 'terminated';
        sandbox = await findSessionSandbox(this.#statebox, sessionId);
        return;
      }
      const acquired = await acquireSessionSandbox(this.#statebox, {
        id: sessionId,
        environmentId: work.environment_id,
        metadata: (session.metadata ?? {}) as Record<string, string>,
      });
      sandbox = acquired.sandbox;
      if (acquired.how === 'forked' && acquired.from) await copyBashState(sandbox, acquired.from, sessionId);
      this.#emit({
        type: 'sandbox.ready',
        sessionId,
        sandboxId: sandbox.id,
        how: acquired.how,
        ...(acquired.from && { from: acquired.from }),
        ms: acquired.ms,
      });
      const current = sandbox;
      const sandboxHandle = async () => {
        if (current.status === 'suspended') await current.resume();
        return current;
      };
      const skills = ((session as { agent?: { skills?: SkillReference[] } }).agent?.skills ??
        []) as SkillReference[];
      if (skills.length > 0) {
        const installed = await installSkills([client, this.#client], current, skills, {
          workdir: this.#options.workdir,
          onError: (skillId, error) =>
            this.#emit({
              type: 'error',
              sessionId,
              message: `skill ${skillId} not installed: ${describeError(error)}`,
            }),
        });
        this.#emit({
          type: 'skills.installed',
          sessionId,
          skills: installed.map((skill) => skill.directory),
        });
      }
      const stores = await this.#mountMemory(client, session, sandboxHandle, sessionId);
      await this.#serve(work, sessionId, client, lease, sandboxHandle, stores);
      if (lease.end === 'lost' || lease.end === 'rejected') outcome = 'lost';
      else if (this.#stopping.signal.aborted) outcome = 'shutdown';
      else {
        const after = await client.beta.sessions.retrieve(sessionId).catch(() => undefined);
        if (after?.status === 'terminated') outcome = 'terminated';
      }
      if (outcome !== 'lost') {
        for (const store of stores) await syncMemoryStore(store, sessionId, (event) => this.#emit(event));
      }
    } catch (error) {
      if (lease.end === 'lost') outcome = 'lost';
      else this.#emit({ type: 'error', sessionId, workId: work.id, message: describeError(error) });
    } finally {
      // A lost lease means another worker owns this session now: touch neither its sandbox nor its item.
      if (outcome !== 'lost') {
        if (sandbox && sessionId) await this.#release(sandbox, sessionId, outcome);
        lease.release();
        await client.beta.environments.work
          .stop(work.id, { environment_id: work.environment_id, force: true })
          .catch((error: { status?: number }) => {
            if (error.status !== 409)
              this.#emit({ type: 'error', workId: work.id, message: describeError(error) });
          });
        this.#emit({ type: 'work.stopped', workId: work.id, sessionId: sessionId ?? '', outcome });
      } else {
        lease.release();
      }
      if (sessionId) this.#claimed.delete(sessionId);
    }
  }

  /** Answers the session's tool calls in its sandbox until it idles, terminates, or we stop. */
  async #serve(
    work: WorkItem,
    sessionId: string,
    client: Anthropic,
    lease: Lease,
    sandbox: () => Promise<Sandbox>,
    stores: MountedMemoryStore[],
  ): Promise<void> {
    const controller = new AbortController();
    lease.signal.addEventListener('abort', () => controller.abort(), { once: true });
    let inFlight = 0;
    let wakeDrain: (() => void) | undefined;
    const active: ActiveSession = {
      workId: work.id,
      sessionId,
      controller,
      get inFlight() {
        return inFlight;
      },
      drained: () =>
        inFlight === 0
          ? Promise.resolve()
          : new Promise<void>((resolve) => {
              wakeDrain = resolve;
            }),
    };
    this.#active.set(work.id, active);
    const readOnlyRoots = stores.filter((store) => store.readOnly).map((store) => store.root);
    const tools = [
      ...createToolset({
        sandbox,
        sessionId,
        workdir: this.#options.workdir,
        allowedRoots: [`${this.#options.workdir}/skills`, ...stores.map((store) => store.root)],
        readOnlyRoots,
        defaultTimeoutMs: this.#options.toolTimeoutMs,
      }),
      ...(this.#options.customTools?.({ sessionId, sandbox }) ?? []),
    ].map((tool) =>
      this.#instrument(tool, sessionId, {
        start: () => {
          inFlight++;
        },
        end: () => {
          inFlight--;
          if (inFlight === 0) wakeDrain?.();
        },
      }),
    );
    let lastSync = Date.now();
    const syncInterval = this.#options.memorySyncIntervalMs ?? 15_000;
    try {
      const runner = new SessionToolRunner(sessionId, {
        client,
        tools,
        maxIdleMs: this.#options.idleMs,
        signal: controller.signal,
      });
      for await (const call of runner) {
        if (!call.posted)
          this.#emit({ type: 'error', sessionId, message: `result of ${call.name} not posted` });
        if (stores.length > 0 && Date.now() - lastSync >= syncInterval) {
          lastSync = Date.now();
          for (const store of stores) await syncMemoryStore(store, sessionId, (event) => this.#emit(event));
        }
      }
    } catch (error) {
      if (!controller.signal.aborted) throw error;
    } finally {
      this.#active.delete(work.id);
    }
  }

  /** Wraps a tool to count calls in flight (for draining) and report each call with its duration. */
  #instrument(
    tool: BetaRunnableTool,
    sessionId: string,
    hooks: { start: () => void; end: () => void },
  ): BetaRunnableTool {
    return {
      ...tool,
      run: async (input: unknown, context?: unknown) => {
        hooks.start();
        const started = performance.now();
        let isError = false;
        try {
          return await (tool.run as (input: unknown, context?: unknown) => ReturnType<typeof tool.run>)(
            input,
            context,
          );
        } catch (error) {
          isError = true;
          throw error;
        } finally {
          hooks.end();
          this.#emit({
            type: 'tool.done',
            sessionId,
            name: tool.name,
            input,
            isError,
            ms: performance.now() - started,
          });
        }
      },
    } as BetaRunnableTool;
  }

  async #mountMemory(
    client: Anthropic,
    session: { resources?: unknown },
    sandbox: () => Promise<Sandbox>,
    sessionId: string,
  ): Promise<MountedMemoryStore[]> {
    if (this.#options.memorySyncIntervalMs === null) return [];
    const resources = ((session.resources ?? []) as MemoryStoreResource[]).filter(
      (resource) => resource.type === 'memory_store',
    );
    const stores: MountedMemoryStore[] = [];
    for (const resource of resources) {
      const store = new MountedMemoryStore(client, sandbox, resource);
      const count = await store.download();
      stores.push(store);
      this.#emit({
        type: 'memory.mounted',
        sessionId,
        storeId: store.storeId,
        root: store.root,
        memories: count,
      });
    }
    return stores;
  }

  /** After a session's work ends: suspend its sandbox, or apply the terminated-session policy. */
  #release(sandbox: Sandbox, sessionId: string, outcome: 'idle' | 'terminated' | 'shutdown'): Promise<void> {
    return releaseSandbox(sandbox, sessionId, outcome, this.#options.terminatedSandbox, (event) =>
      this.#emit(event),
    );
  }

  #clientFor(credential: string): Anthropic {
    // apiKey null: with a Bearer credential the server rejects a second, x-api-key credential (401).
    return new Anthropic({
      apiKey: null,
      authToken: credential,
      ...(this.#options?.baseURL !== undefined && { baseURL: this.#options.baseURL }),
    });
  }

  #emit(event: RunnerEvent): void {
    this.#options.onEvent?.(event);
  }
}

type WorkItem = {
  id: string;
  environment_id: string;
  secret: string | null;
  data: { type?: string; id: string };
};

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

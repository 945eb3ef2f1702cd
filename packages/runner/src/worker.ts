import { hostname } from 'node:os';
import Anthropic from '@anthropic-ai/sdk';
import { SessionToolRunner, WorkPoller } from '@anthropic-ai/sdk/helpers/beta/environments';
import type { BetaRunnableTool } from '@anthropic-ai/sdk/lib/tools/BetaRunnableTool';
import { createStatebox, type Sandbox, type Statebox } from '@statebox/core';
import { delay } from './delay.js';
import { describeError, type RunnerEvent } from './events.js';
import { instrumentTool, refusingTools } from './instrument.js';
import { sweepEnvironment } from './janitor.js';
import { holdLease, type Lease, sessionsTokenFromSecret } from './lease.js';
import { type MountedMemoryStore, mountMemoryStores, syncMemoryStore } from './memory.js';
import type { RunnerOptions } from './options.js';
import { Semaphore } from './semaphore.js';
import {
  acquireSessionSandbox,
  acquireWithRetry,
  ForkRefusedError,
  findSessionSandbox,
  releaseSandbox,
  sessionSandboxHandle,
} from './session-sandbox.js';
import { awaitOwnership, otherLiveWork, turnUnderWay } from './session-work.js';
import { installSkills, type SkillReference } from './skills.js';
import { copyBashState, createToolset } from './tools/index.js';
import type { WorkItem } from './work-item.js';

export type { RunnerOptions } from './options.js';

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
          await Promise.race([session.drained(), delay(DRAIN_TIMEOUT_MS, undefined, { unref: true })]);
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
   * One sweep over this environment's sandboxes (see `janitorIntervalMs`). Public so an operator can
   * run it on demand.
   */
  sweep(): Promise<void> {
    return sweepEnvironment({
      client: this.#client,
      statebox: this.#statebox,
      environmentId: this.#options.environmentId,
      release: (sandbox, sessionId, outcome) => this.#release(sandbox, sessionId, outcome),
    });
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
    let outcome: 'idle' | 'terminated' | 'shutdown' | 'lost' | 'duplicate' = 'idle';
    let sandbox: Sandbox | undefined;
    try {
      if (work.data.type !== 'session') return;
      sessionId = work.data.id;
      this.#emit({ type: 'work.claimed', workId: work.id, sessionId });
      // A duplicate or re-delivered item for a session another item serves waits for it to end, so one
      // tool call never runs in two places; the queue decides, so this holds across replicas.
      const waiting = AbortSignal.any([lease.signal, this.#stopping.signal]);
      const owner = await awaitOwnership(
        this.#client,
        { id: work.id, environmentId: work.environment_id, sessionId },
        waiting,
        (current) =>
          this.#emit({ type: 'work.waiting', workId: work.id, sessionId: sessionId!, behind: current }),
      );
      if (!owner) {
        outcome = lease.end === 'lost' || lease.end === 'rejected' ? 'lost' : 'duplicate';
        return;
      }
      if (work.latest_heartbeat_at) await this.#graceForPreviousHolder(work, sessionId, lease);
      const session = await client.beta.sessions.retrieve(sessionId, {}, { signal: lease.signal });
      if (session.status === 'terminated') {
        outcome = 'terminated';
        sandbox = await findSessionSandbox(this.#statebox, sessionId);
        return;
      }
      let acquired: Awaited<ReturnType<typeof acquireSessionSandbox>>;
      try {
        const acquire = () =>
          acquireSessionSandbox(this.#statebox, this.#client, {
            id: sessionId!,
            environmentId: work.environment_id,
            agentId: (session as { agent?: { id?: string } }).agent?.id,
            metadata: (session.metadata ?? {}) as Record<string, string>,
            forkAcrossAgents: this.#options.forkAcrossAgents ?? false,
          });
        acquired = await acquireWithRetry(acquire, sessionId, waiting, (event) => this.#emit(event));
      } catch (error) {
        if (waiting.aborted) throw error;
        // The session learns why through its tool results, the one channel a worker writes to, rather
        // than waiting for a worker that never answers; its next message tries again.
        const refused = error instanceof ForkRefusedError;
        const message = refused
          ? error.message
          : `this session's sandbox could not be prepared (${describeError(error)}); send another message to try again`;
        if (refused) this.#emit({ type: 'fork.refused', sessionId, message });
        else this.#emit({ type: 'error', sessionId, workId: work.id, message: describeError(error) });
        await this.#serve(work, sessionId, client, lease, refusingTools(message));
        return;
      }
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
      const sandboxHandle = sessionSandboxHandle(sandbox, sessionId, (event) => this.#emit(event));
      const skills = ((session as { agent?: { skills?: SkillReference[] } }).agent?.skills ??
        []) as SkillReference[];
      if (skills.length > 0) {
        const installed = await installSkills([client, this.#client], sandbox, skills, {
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
      const stores =
        this.#options.memorySyncIntervalMs === null
          ? []
          : await mountMemoryStores(client, session, sandboxHandle, sessionId, (event) => this.#emit(event));
      const tools = this.#tools(sessionId, sandboxHandle, stores);
      await this.#serve(work, sessionId, client, lease, tools, stores);
      // A message that came as the session idled out found this item live, so no new item was queued
      // for it: serve again rather than stop the item and leave that turn to no one.
      while (
        !lease.signal.aborted &&
        !this.#stopping.signal.aborted &&
        (await turnUnderWay(client, sessionId))
      ) {
        await this.#serve(work, sessionId, client, lease, tools, stores);
      }
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
      // Drained mid-turn: the item is not stopped but left to lapse, so the queue hands it to another
      // worker after the lease TTL (a stopped item is not queued again until the next user message).
      const handOver =
        outcome === 'shutdown' &&
        sessionId !== undefined &&
        (await turnUnderWay(client, sessionId).catch(() => true));
      // A lost lease means another worker owns this session now: touch neither its sandbox nor its item.
      if (outcome !== 'lost' && sandbox && sessionId && outcome !== 'duplicate') {
        await this.#releaseUnlessServed(sandbox, sessionId, outcome, work);
      }
      lease.release();
      if (handOver) {
        this.#emit({ type: 'work.handed-over', workId: work.id, sessionId: sessionId ?? '' });
      } else if (outcome !== 'lost') {
        await client.beta.environments.work
          .stop(work.id, { environment_id: work.environment_id, force: true })
          .catch((error: { status?: number }) => {
            if (error.status !== 409)
              this.#emit({ type: 'error', workId: work.id, message: describeError(error) });
          });
        this.#emit({ type: 'work.stopped', workId: work.id, sessionId: sessionId ?? '', outcome });
      }
    }
  }

  /**
   * A re-delivered item (one that was heartbeated before this worker polled it) may still have a
   * holder that has not yet learnt it lost the lease: it finds out at its next heartbeat, at most one
   * beat interval (half the TTL, up to 30 s) away, and then stops its call in flight. Serving before
   * that would read a history without the result it is about to post, and answer the call twice
   * (seen in the lost-lease test), so the new holder waits out one interval first.
   */
  async #graceForPreviousHolder(work: WorkItem, sessionId: string, lease: Lease): Promise<void> {
    await Promise.race([lease.firstBeat, delay(10_000, lease.signal, { unref: true })]);
    const waitMs = Math.min(lease.ttlMs / 2, 30_000) + 1000;
    this.#emit({ type: 'work.redelivered', workId: work.id, sessionId, waitMs });
    await delay(waitMs, lease.signal, { unref: true });
  }

  /**
   * Suspends (or applies the terminated policy to) the sandbox after this worker's item ends, unless
   * another live work item names the session: then a worker is about to serve it, and suspending now
   * would fail its next tool call.
   */
  async #releaseUnlessServed(
    sandbox: Sandbox,
    sessionId: string,
    outcome: 'idle' | 'terminated' | 'shutdown',
    work: WorkItem,
  ): Promise<void> {
    if (outcome !== 'terminated') {
      const served = await otherLiveWork(this.#client, work.environment_id, sessionId, work.id).catch(
        () => false,
      );
      if (served) {
        this.#emit({
          type: 'sandbox.kept',
          sessionId,
          sandboxId: sandbox.id,
          reason: 'another work item serves the session',
        });
        return;
      }
    }
    await this.#release(sandbox, sessionId, outcome);
  }

  #tools(
    sessionId: string,
    sandbox: () => Promise<Sandbox>,
    stores: MountedMemoryStore[],
  ): BetaRunnableTool[] {
    return [
      ...createToolset({
        sandbox,
        sessionId,
        workdir: this.#options.workdir,
        allowedRoots: [`${this.#options.workdir}/skills`, ...stores.map((store) => store.root)],
        readOnlyRoots: stores.filter((store) => store.readOnly).map((store) => store.root),
        defaultTimeoutMs: this.#options.toolTimeoutMs,
      }),
      ...(this.#options.customTools?.({ sessionId, sandbox }) ?? []),
    ];
  }

  /** Answers the session's tool calls until it idles, terminates, or we stop. */
  async #serve(
    work: WorkItem,
    sessionId: string,
    client: Anthropic,
    lease: Lease,
    baseTools: BetaRunnableTool[],
    stores: MountedMemoryStore[] = [],
  ): Promise<void> {
    const controller = new AbortController();
    lease.signal.addEventListener('abort', () => controller.abort(), { once: true });
    // A call counts as in flight from its start until the SDK surfaces it, i.e. after its result is
    // posted: a drain that stopped waiting when the tool returned aborted the post, and the next worker
    // ran the call again (seen in the rolling-restart test).
    const pending = new Set<string>();
    let wakeDrain: (() => void) | undefined;
    const settle = (toolUseId: string) => {
      pending.delete(toolUseId);
      if (pending.size === 0) wakeDrain?.();
    };
    const active: ActiveSession = {
      workId: work.id,
      sessionId,
      controller,
      get inFlight() {
        return pending.size;
      },
      drained: () =>
        pending.size === 0
          ? Promise.resolve()
          : new Promise<void>((resolve) => {
              wakeDrain = resolve;
            }),
    };
    this.#active.set(work.id, active);
    const tools = baseTools.map((tool) =>
      instrumentTool(tool, {
        signal: controller.signal,
        draining: this.#stopping.signal,
        timeoutMs: this.#options.toolTimeoutMs,
        start: (toolUseId) => {
          if (toolUseId) pending.add(toolUseId);
        },
        end: (name, input, isError, ms) => {
          this.#emit({ type: 'tool.done', sessionId, name, input, isError, ms });
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
      // A result keeps being retried for as long as the lease could still be live, as the SDK's own
      // worker does (the hook is marked internal there; without it the window is a fixed 5 min).
      const retryWindow = (runner as { _setSendRetryWindow?: (ms: number) => void })._setSendRetryWindow;
      if (retryWindow) lease.onTtl((ttlMs) => retryWindow.call(runner, ttlMs));
      for await (const call of runner) {
        settle(call.toolUseId);
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
      pending.clear();
      wakeDrain?.();
      this.#active.delete(work.id);
    }
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

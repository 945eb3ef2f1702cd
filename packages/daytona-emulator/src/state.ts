import { randomUUID } from 'node:crypto';
import type { Sandbox as BackingSandbox, SandboxProvider } from '@statebox/core';
import { BackingSandboxes, HttpError } from '@statebox/emulator-kit';

/** The 22 sandbox states of `@daytona/api-client` 0.218 (`SandboxState`). */
export type SandboxState =
  | 'creating'
  | 'restoring'
  | 'destroyed'
  | 'destroying'
  | 'started'
  | 'stopped'
  | 'starting'
  | 'stopping'
  | 'error'
  | 'build_failed'
  | 'pending_build'
  | 'building_snapshot'
  | 'unknown'
  | 'pulling_snapshot'
  | 'archived'
  | 'archiving'
  | 'resizing'
  | 'snapshotting'
  | 'forking'
  | 'pausing'
  | 'paused'
  | 'resuming';

export type SandboxClass = 'container' | 'linux-vm';

/** How long the emulator's asynchronous transitions take (milliseconds), and how long a "minute" is. */
export type EmulatorTiming = {
  /** Extra time every transition (`starting`, `stopping`, `pausing`, ...) stays in its transitional state. */
  transitionMs: number;
  /** Extra time a start from `archived` takes (Daytona restores the filesystem from object storage). */
  archiveRestoreMs: number;
  /** The length of a "minute" for autoStop/autoPause/autoArchive intervals; tests shorten it. */
  minuteMs: number;
};

export type SandboxRecord = {
  id: string;
  name: string;
  labels: Record<string, string>;
  env: Record<string, string>;
  target: string;
  state: SandboxState;
  desiredState: 'started' | 'stopped' | 'paused' | 'archived' | 'destroyed';
  errorReason?: string | undefined;
  sandboxClass: SandboxClass;
  autoStopInterval: number;
  autoPauseInterval: number;
  autoArchiveInterval: number;
  autoDeleteInterval: number;
  createdAt: string;
  updatedAt: string;
  lastActivityAt: string;
  /** When it last reached `stopped` (auto-archive counts from here). */
  stoppedAt: number | undefined;
  parentId: string | undefined;
  /** A transition in flight: requests that need another one wait for it (Daytona answers 409 instead; see README). */
  busy: Promise<void> | undefined;
  backing: BackingSandbox;
};

export type DaytonaStateOptions = {
  provider: SandboxProvider;
  timing: EmulatorTiming;
  sandboxClass: SandboxClass;
  organizationId: string;
  toolboxProxyUrl: () => string;
};

export const notFound = (id: string): HttpError =>
  new HttpError(404, `Sandbox with ID or name ${id} not found`, { code: 'Not Found' });

export const conflict = (message: string): HttpError => new HttpError(409, message, { code: 'Conflict' });

export const badRequest = (message: string): HttpError =>
  new HttpError(400, message, { code: 'Bad Request' });

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Every sandbox the emulator knows, with its Daytona-only state (labels, intervals, the state machine)
 * beside the real statebox sandbox that backs it.
 */
export class DaytonaState {
  readonly sandboxes = new Map<string, SandboxRecord>();
  readonly backing: BackingSandboxes;
  readonly options: DaytonaStateOptions;

  constructor(options: DaytonaStateOptions) {
    this.options = options;
    this.backing = new BackingSandboxes({ emulator: 'daytona', provider: options.provider });
  }

  /** By id or by name, as `GET /sandbox/{sandboxIdOrName}` resolves it. Destroyed ones are gone. */
  require(idOrName: string): SandboxRecord {
    const byId = this.sandboxes.get(idOrName);
    if (byId) return byId;
    for (const record of this.sandboxes.values()) if (record.name === idOrName) return record;
    throw notFound(idOrName);
  }

  async create(body: Record<string, unknown>): Promise<SandboxRecord> {
    const id = randomUUID();
    const name = typeof body.name === 'string' && body.name ? body.name : id;
    for (const record of this.sandboxes.values()) {
      if (record.name === name) throw conflict(`Sandbox with name ${name} already exists`);
    }
    const env = stringRecord(body.env, 'env');
    const labels = stringRecord(body.labels, 'labels');
    const autoStopInterval = interval(body.autoStopInterval, 15, 'autoStopInterval');
    const autoPauseInterval = interval(body.autoPauseInterval, 0, 'autoPauseInterval');
    if (autoStopInterval && autoPauseInterval) {
      throw badRequest('autoStopInterval and autoPauseInterval are mutually exclusive');
    }
    const backing = await this.backing.create(id, { env });
    const now = new Date().toISOString();
    const record: SandboxRecord = {
      id,
      name,
      labels,
      env,
      target: typeof body.target === 'string' ? body.target : 'us',
      state: 'creating',
      desiredState: 'started',
      sandboxClass: this.options.sandboxClass,
      autoStopInterval,
      autoPauseInterval,
      autoArchiveInterval:
        interval(body.autoArchiveInterval, 7 * 24 * 60, 'autoArchiveInterval') || 30 * 24 * 60,
      autoDeleteInterval: interval(body.autoDeleteInterval, -1, 'autoDeleteInterval'),
      createdAt: now,
      updatedAt: now,
      lastActivityAt: now,
      stoppedAt: undefined,
      parentId: undefined,
      busy: undefined,
      backing,
    };
    this.sandboxes.set(id, record);
    this.#run(record, async () => {
      await sleep(this.options.timing.transitionMs);
      record.state = 'started';
    });
    return record;
  }

  /** Runs one asynchronous transition; a failure puts the sandbox back where it was, with `errorReason`. */
  #run(record: SandboxRecord, work: () => Promise<void>, previous?: SandboxState): void {
    const done = (async () => {
      try {
        await work();
        record.errorReason = undefined;
      } catch (error) {
        record.errorReason = error instanceof Error ? error.message : String(error);
        record.state = previous ?? 'error';
      } finally {
        record.updatedAt = new Date().toISOString();
        record.busy = undefined;
      }
    })();
    record.busy = done;
  }

  async #settled(record: SandboxRecord): Promise<void> {
    while (record.busy) await record.busy;
  }

  touch(record: SandboxRecord): void {
    record.lastActivityAt = new Date().toISOString();
  }

  async start(record: SandboxRecord): Promise<void> {
    await this.#settled(record);
    const from = record.state;
    if (from === 'started') return;
    if (from !== 'stopped' && from !== 'paused' && from !== 'archived' && from !== 'error') {
      throw badRequest(`Sandbox ${record.id} is ${from}; it can be started from stopped, paused or archived`);
    }
    record.desiredState = 'started';
    record.state = from === 'paused' ? 'resuming' : from === 'archived' ? 'restoring' : 'starting';
    this.touch(record);
    this.#run(
      record,
      async () => {
        const { timing } = this.options;
        await sleep(timing.transitionMs + (from === 'archived' ? timing.archiveRestoreMs : 0));
        if (from === 'paused') await thaw(record.backing);
        else if (record.backing.status !== 'running') await record.backing.resume();
        record.state = 'started';
      },
      from,
    );
  }

  async stop(record: SandboxRecord): Promise<void> {
    await this.#settled(record);
    const from = record.state;
    if (from === 'stopped') return;
    if (from !== 'started' && from !== 'paused') {
      throw badRequest(`Sandbox ${record.id} is ${from}; only a started or paused sandbox can be stopped`);
    }
    record.desiredState = 'stopped';
    record.state = 'stopping';
    this.#run(
      record,
      async () => {
        await sleep(this.options.timing.transitionMs);
        if (from === 'paused') await thaw(record.backing);
        await record.backing.suspend();
        record.state = 'stopped';
        record.stoppedAt = Date.now();
      },
      from,
    );
  }

  async pause(record: SandboxRecord): Promise<void> {
    await this.#settled(record);
    const from = record.state;
    if (from === 'paused') return;
    if (record.sandboxClass !== 'linux-vm') {
      throw badRequest(
        `Sandbox ${record.id} is of class ${record.sandboxClass}; pausing needs a linux-vm sandbox`,
      );
    }
    if (from !== 'started')
      throw badRequest(`Sandbox ${record.id} is ${from}; only a started sandbox can be paused`);
    record.desiredState = 'paused';
    record.state = 'pausing';
    this.#run(
      record,
      async () => {
        await sleep(this.options.timing.transitionMs);
        await freeze(record.backing);
        record.state = 'paused';
      },
      from,
    );
  }

  async archive(record: SandboxRecord): Promise<void> {
    await this.#settled(record);
    const from = record.state;
    if (from === 'archived') return;
    if (from !== 'stopped') {
      throw badRequest(`Sandbox ${record.id} is ${from}; a sandbox must be stopped before it is archived`);
    }
    record.desiredState = 'archived';
    record.state = 'archiving';
    this.#run(
      record,
      async () => {
        await sleep(this.options.timing.transitionMs);
        record.state = 'archived';
      },
      from,
    );
  }

  /** A copy-on-write child of a started sandbox; the parent goes through `forking` and back to `started`. */
  async fork(source: SandboxRecord, name: string | undefined): Promise<SandboxRecord> {
    // Forks of one source run one at a time (each seals the source's filesystem); later ones wait.
    const previous = this.#forks.get(source.id) ?? Promise.resolve();
    const mine = previous.then(() => this.#fork(source, name));
    const tail = mine.then(
      () => undefined,
      () => undefined,
    );
    this.#forks.set(source.id, tail);
    return mine;
  }

  readonly #forks = new Map<string, Promise<void>>();

  async #fork(source: SandboxRecord, name: string | undefined): Promise<SandboxRecord> {
    await this.#settled(source);
    if (source.state !== 'started') {
      throw badRequest(`Sandbox ${source.id} is ${source.state}; only a started sandbox can be forked`);
    }
    const id = randomUUID();
    const childName = name || id;
    for (const record of this.sandboxes.values()) {
      if (record.name === childName) throw conflict(`Sandbox with name ${childName} already exists`);
    }
    source.state = 'forking';
    let backing: BackingSandbox;
    try {
      backing = await this.backing.fork(source.id, id);
    } finally {
      source.state = 'started';
      source.updatedAt = new Date().toISOString();
    }
    const now = new Date().toISOString();
    const child: SandboxRecord = {
      ...source,
      id,
      name: childName,
      labels: { ...source.labels },
      env: { ...source.env },
      state: 'creating',
      desiredState: 'started',
      createdAt: now,
      updatedAt: now,
      lastActivityAt: now,
      stoppedAt: undefined,
      parentId: source.id,
      busy: undefined,
      backing,
    };
    this.sandboxes.set(id, child);
    this.#run(child, async () => {
      await sleep(this.options.timing.transitionMs);
      child.state = 'started';
    });
    return child;
  }

  async destroy(record: SandboxRecord): Promise<void> {
    const children = [...this.sandboxes.values()].filter((other) => other.parentId === record.id);
    if (children.length > 0) {
      throw conflict(
        `Sandbox ${record.id} has ${children.length} fork(s) (${children.map((child) => child.id).join(', ')}); delete them first`,
      );
    }
    await this.#settled(record);
    record.state = 'destroying';
    record.desiredState = 'destroyed';
    this.sandboxes.delete(record.id);
    if (record.backing.status === 'suspended') await record.backing.resume().catch(() => undefined);
    await this.backing.destroy(record.id);
  }

  /** The `Sandbox` DTO of `@daytona/api-client`. */
  dto(record: SandboxRecord): Record<string, unknown> {
    return {
      id: record.id,
      organizationId: this.options.organizationId,
      name: record.name,
      snapshot: 'daytonaio/sandbox:emulated',
      user: 'daytona',
      env: record.env,
      labels: record.labels,
      public: false,
      networkBlockAll: false,
      target: record.target,
      cpu: 1,
      gpu: 0,
      memory: 1,
      disk: 3,
      state: record.state,
      desiredState: record.desiredState,
      errorReason: record.errorReason,
      recoverable: false,
      backupState: record.state === 'archived' ? 'Completed' : 'None',
      autoStopInterval: record.autoStopInterval,
      autoPauseInterval: record.autoPauseInterval,
      autoArchiveInterval: record.autoArchiveInterval,
      autoDeleteInterval: record.autoDeleteInterval,
      createdAt: record.createdAt,
      updatedAt: record.updatedAt,
      lastActivityAt: record.lastActivityAt,
      sandboxClass: record.sandboxClass,
      daemonVersion: 'emulated',
      toolboxProxyUrl: this.options.toolboxProxyUrl(),
    };
  }

  /** Daytona's idle timers: auto-stop (or auto-pause) a started sandbox, auto-archive a stopped one. */
  async tick(now = Date.now()): Promise<void> {
    const minute = this.options.timing.minuteMs;
    for (const record of [...this.sandboxes.values()]) {
      if (record.busy) continue;
      const idle = now - Date.parse(record.lastActivityAt);
      try {
        if (
          record.state === 'started' &&
          record.autoStopInterval > 0 &&
          idle > record.autoStopInterval * minute
        ) {
          await this.stop(record);
        } else if (
          record.state === 'started' &&
          record.autoPauseInterval > 0 &&
          record.sandboxClass === 'linux-vm' &&
          idle > record.autoPauseInterval * minute
        ) {
          await this.pause(record);
        } else if (
          record.state === 'stopped' &&
          record.stoppedAt !== undefined &&
          now - record.stoppedAt > record.autoArchiveInterval * minute
        ) {
          await this.archive(record);
        }
      } catch {
        // A sandbox that changed state under the timer is looked at again on the next tick.
      }
    }
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.sandboxes.values()].map((record) => record.busy));
    for (const record of this.sandboxes.values()) {
      if (record.backing.status === 'running') await thaw(record.backing).catch(() => undefined);
    }
    this.sandboxes.clear();
    await this.backing.close();
  }
}

/**
 * Pause freezes every process of the sandbox (SIGSTOP to all but the sandbox's init, from inside its PID
 * namespace), so nothing runs but everything stays in memory; a start sends SIGCONT.
 */
async function freeze(backing: BackingSandbox): Promise<void> {
  const result = await backing.exec(['/bin/sh', '-c', 'kill -STOP -1'], { timeoutMs: 30_000 });
  // `kill -1` skips init and the caller; with nothing else running (the init idles without a child) it
  // finds no process (ESRCH), and an idle sandbox is then already as frozen as it gets. (No subshell here:
  // `kill -1` would stop it.)
  if (result.exitCode !== 0 && /no such process/i.test(result.stderr)) return;
  if (result.exitCode !== 0) throw new Error(`pause could not freeze the processes: ${result.stderr}`);
}

async function thaw(backing: BackingSandbox): Promise<void> {
  await backing.exec(['/bin/sh', '-c', 'kill -CONT -1 2>/dev/null; true'], { timeoutMs: 30_000 });
}

function stringRecord(value: unknown, field: string): Record<string, string> {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw badRequest(`${field} must be an object`);
  const out: Record<string, string> = {};
  for (const [key, entry] of Object.entries(value)) {
    if (typeof entry !== 'string') throw badRequest(`${field}.${key} must be a string`);
    out[key] = entry;
  }
  return out;
}

function interval(value: unknown, fallback: number, field: string): number {
  if (value === undefined || value === null) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < -1) {
    throw badRequest(`${field} must be an integer number of minutes`);
  }
  return value;
}

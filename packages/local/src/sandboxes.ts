import { mkdir, readdir } from 'node:fs/promises';
import type { CreateRequest, ListFilter, SandboxInfo } from '@statebox/core';
import { detectCgroups, isFrozen, thawCgroup } from './cgroups.js';
import { notFoundError, suspendedError } from './errors.js';
import { Home, hasIntent, isValidId, newSandboxId, type SandboxRecord } from './home.js';
import { initIsAlive } from './init.js';
import { probeIsolation } from './isolation.js';
import { createUpper } from './layers.js';
import type { ResolvedLocalOptions } from './options.js';
import { removeSandbox, repairRecord, sweepSandboxes } from './repair.js';
import { prepareRuntime } from './rootfs.js';
import { type Setup, startSandbox } from './start.js';

const WORKDIR = '/workspace';
const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * The sandboxes of one state directory: the host checked once, records loaded under their lock with
 * whatever a dead operation left repaired first, inits started, and what callers see of a record.
 */
export class Sandboxes {
  readonly home: Home;
  readonly options: ResolvedLocalOptions;
  #setup: Promise<Setup> | undefined;

  constructor(options: ResolvedLocalOptions) {
    this.home = new Home(options.home);
    this.options = options;
  }

  /** Checks the host once, lazily: constructing a provider never fails, its first use may. */
  ready(): Promise<Setup> {
    this.#setup ??= (async () => {
      const tools = probeIsolation(this.options.sandboxUid, this.options.toolPath);
      await this.home.ensure();
      return { tools, runtime: prepareRuntime(this.home.runtimeDir), cgroups: detectCgroups() };
    })().catch((error) => {
      this.#setup = undefined;
      throw error;
    });
    return this.#setup;
  }

  async create(request: CreateRequest): Promise<SandboxInfo> {
    const { tools } = await this.ready();
    const record: SandboxRecord = {
      version: 1,
      id: newSandboxId(),
      labels: { ...request.labels },
      env: { ...request.env },
      createdAt: new Date().toISOString(),
      status: 'running',
      network: this.options.network,
      layers: [],
      upper: 'u-0',
      owner: tools.sandboxUid,
      // Until the last write: a create that dies before it leaves a sandbox nobody knows, which is removed.
      creating: true,
    };
    const release = await this.home.lock(record.id);
    let created = false;
    try {
      await mkdir(this.home.sandboxDir(record.id), { mode: 0o700 });
      await createUpper(this.home, record, record.upper, true, {
        uid: tools.sandboxUid,
        gid: tools.sandboxGid,
      });
      const started: SandboxRecord = { ...(await this.start(record)) };
      delete started.creating;
      await this.home.write(started);
      created = true;
      return this.info(started);
    } catch (error) {
      const context = { sandboxId: record.id, operation: 'create' };
      const written = await this.home.read(record.id).catch(() => undefined);
      await removeSandbox(this.home, record.id, written, context).catch(() => undefined);
      throw error;
    } finally {
      await release({ remove: !created });
    }
  }

  async get(sandboxId: string): Promise<SandboxInfo> {
    const record = await this.load(sandboxId, 'get');
    if (!hasIntent(record)) return this.info(record);
    // An operation died part-way, or one is at work: repair now if nobody holds the sandbox.
    const release = await this.home.tryLock(sandboxId);
    if (!release) return this.info(record);
    let gone = false;
    try {
      const current = await this.home.read(sandboxId, 'get');
      const repaired = current && (await repairRecord(this.home, current, { sandboxId, operation: 'get' }));
      gone = !repaired;
      if (!repaired) throw notFoundError(sandboxId, 'get');
      return this.info(repaired);
    } finally {
      await release({ remove: gone });
    }
  }

  async list(filter: ListFilter): Promise<SandboxInfo[]> {
    await this.ready();
    const wanted = Object.entries(filter.labels ?? {});
    const infos: SandboxInfo[] = [];
    let leftovers = false;
    const entries = await readdir(this.home.sandboxesDir).catch(() => [] as string[]);
    for (const lock of await readdir(this.home.locksDir).catch(() => [] as string[])) {
      const id = lock.replace(/\.lock$/, '');
      leftovers ||= id !== lock && isValidId(id) && !entries.includes(id);
    }
    for (const entry of entries) {
      leftovers ||= entry.startsWith('.deleted-');
      if (!isValidId(entry)) continue;
      // null: unreadable or corrupt, listed by no one until destroyed.
      const record = await this.home.read(entry).catch(() => null);
      // A sandbox still `creating`, or with no record, was never handed to anyone.
      leftovers ||= record === undefined || record?.creating === true;
      if (!record || record.creating) continue;
      if (wanted.every(([key, value]) => record.labels[key] === value)) infos.push(this.info(record));
    }
    // What a create, fork or destroy that died left behind goes now, where nobody is at work on it.
    if (leftovers) await sweepSandboxes(this.home, undefined);
    return infos.sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  /** Starts the init (compacting a long layer chain first) and records it. Caller holds the lock. */
  async start(record: SandboxRecord): Promise<SandboxRecord> {
    return startSandbox(this.home, await this.ready(), this.options, record);
  }

  /**
   * A sandbox found frozen by an exec: a fork freezes it only while holding its lock, so once the lock
   * is ours, a freeze still in place belongs to a fork that died, and is undone.
   */
  async thawIfAbandoned(sandboxId: string): Promise<void> {
    const release = await this.home.lock(sandboxId);
    try {
      const record = await this.home.read(sandboxId);
      const groups = record?.runtime?.cgroups;
      if (groups && isFrozen(groups.freezer)) await thawCgroup(groups.freezer);
    } finally {
      await release();
    }
  }

  /** Loads a record, or throws SandboxNotFoundError (also for one whose create or fork never finished). */
  async load(sandboxId: string, operation: string): Promise<SandboxRecord> {
    await this.ready();
    const record = await this.home.read(sandboxId, operation);
    if (!record || record.creating) throw notFoundError(sandboxId, operation);
    return record;
  }

  /**
   * Runs an action under the sandbox's lock, after repairing whatever an operation that died left (any
   * intent found under the lock is such a leftover). An action that fails part-way is repaired at once.
   */
  async locked<T>(
    sandboxId: string,
    operation: string,
    action: (record: SandboxRecord) => Promise<T>,
  ): Promise<T> {
    await this.load(sandboxId, operation);
    const release = await this.home.lock(sandboxId);
    const context = { sandboxId, operation };
    let gone = false;
    try {
      const loaded = await this.home.read(sandboxId, operation);
      const record = loaded && (await repairRecord(this.home, loaded, context));
      if (!record) {
        gone = true;
        throw notFoundError(sandboxId, operation);
      }
      try {
        return await action(record);
      } catch (error) {
        const left = await this.home.read(sandboxId).catch(() => undefined);
        if (left && hasIntent(left)) await repairRecord(this.home, left, context).catch(() => undefined);
        throw error;
      }
    } finally {
      await release({ remove: gone });
    }
  }

  /** The record of a running sandbox whose init is alive, restarting an init that died (crash, reboot). */
  async running(sandboxId: string, operation: string): Promise<SandboxRecord> {
    const record = await this.load(sandboxId, operation);
    if (record.status === 'suspended' && !hasIntent(record)) throw suspendedError(sandboxId, operation);
    if (initIsAlive(record.runtime) && !hasIntent(record)) return record;
    return this.locked(sandboxId, operation, async (current) => {
      if (current.status === 'suspended') throw suspendedError(sandboxId, operation);
      return initIsAlive(current.runtime) ? current : this.start(current);
    });
  }

  /** A command's environment: the defaults, then the provider's, the sandbox's and the call's variables. */
  environment(record: SandboxRecord, extra: Record<string, string> | undefined): Record<string, string> {
    return {
      PATH: DEFAULT_PATH,
      HOME: '/root',
      USER: 'root',
      LOGNAME: 'root',
      HOSTNAME: 'sandbox',
      LANG: 'C.UTF-8',
      ...this.options.env,
      ...record.env,
      ...extra,
    };
  }

  info(record: SandboxRecord): SandboxInfo {
    return {
      id: record.id,
      provider: 'local',
      status: record.status,
      labels: record.labels,
      createdAt: record.createdAt,
      parentId: record.parentId,
      workdir: WORKDIR,
    };
  }
}

import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import {
  type CreateRequest,
  type ExecOutput,
  type ExecRequest,
  type ForkRequest,
  InvalidStateError,
  type ListFilter,
  ProviderError,
  type PruneOptions,
  type PruneReport,
  type ReadFileOptions,
  type SandboxCapabilities,
  type SandboxInfo,
  SandboxNotFoundError,
  type SandboxProvider,
  type SandboxUsage,
  type TerminalRequest,
  type TerminalSession,
  UnsupportedCapabilityError,
  type WriteFileOptions,
} from '@statebox/core';
import {
  type CgroupRoots,
  createExecCgroups,
  createSandboxCgroups,
  detectCgroups,
  isFrozen,
  joinCgroups,
  killCgroup,
  removeExecCgroups,
  removeSandboxCgroups,
  sweepSandboxCgroups,
  thawCgroup,
} from './cgroups.js';
import { readSandboxFile, writeSandboxFile } from './files.js';
import { forkSandbox } from './fork.js';
import { Home, hasIntent, isValidId, newSandboxId, removeTree, type SandboxRecord } from './home.js';
import {
  buildFstab,
  DEFAULT_SANDBOX_UID,
  enterArgs,
  HELPER_ENV,
  type IsolationTools,
  initIsAlive,
  killInit,
  prepareRuntime,
  probeIsolation,
  type RunningInit,
  type Runtime,
  startInit,
  stopInit,
  waitForExit,
} from './isolation.js';
import { adoptRootOwnedFiles, compactLayers, createUpper, upperPath, workPath } from './layers.js';
import { type LocalOptions, type ResolvedLimits, resolveLimits } from './options.js';
import { runProcess } from './process.js';
import { pruneHome, sandboxUsage } from './prune.js';
import { destroySandbox, interruption, removeSandbox, repairRecord, sweepSandboxes } from './repair.js';
import { openTerminal } from './terminal.js';

const WORKDIR = '/workspace';
const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/** A chain longer than maxLayers whose compaction fails still mounts up to here (~13 bytes of options each). */
const MOUNTABLE_LAYERS = 250;

export const localCapabilities: SandboxCapabilities = {
  // CRIU does not work on the kernels we target, so processes cannot be checkpointed: files only.
  suspend: 'filesystem',
  fork: 'filesystem',
  forkSuspended: true,
  // Sealing a running sandbox's upper layer needs its overlay unmounted, which ends its processes.
  forkSource: 'restarted',
  execStreaming: true,
  fileModes: true,
  symlinks: true,
  // Until issue 7 lands hard-link fidelity: a fork copies up each name of a linked file separately.
  hardLinks: false,
};

type Setup = { tools: IsolationTools; runtime: Runtime; cgroups: CgroupRoots | undefined };

export class LocalProvider implements SandboxProvider {
  readonly specificationVersion = 'statebox-v1' as const;
  readonly name = 'local';
  readonly capabilities = localCapabilities;
  readonly home: Home;
  readonly #options: Required<Pick<LocalOptions, 'network' | 'maxLayers' | 'durability'>> & {
    env: Record<string, string>;
    sandboxUid: number;
    limits: ResolvedLimits;
  };
  #setup: Promise<Setup> | undefined;

  constructor(options: LocalOptions & { home: string }) {
    this.home = new Home(options.home);
    this.#options = {
      network: options.network ?? false,
      maxLayers: options.maxLayers ?? 64,
      durability: options.durability ?? 'volatile',
      env: options.env ?? {},
      sandboxUid: options.sandboxUid ?? DEFAULT_SANDBOX_UID,
      limits: resolveLimits(options.limits),
    };
  }

  /** Checks the host once, lazily: constructing a provider never fails, its first use may. */
  #ready(): Promise<Setup> {
    this.#setup ??= (async () => {
      const tools = probeIsolation(this.#options.sandboxUid);
      await this.home.ensure();
      return { tools, runtime: prepareRuntime(this.home.runtimeDir), cgroups: detectCgroups() };
    })().catch((error) => {
      this.#setup = undefined;
      throw error;
    });
    return this.#setup;
  }

  async create(request: CreateRequest): Promise<SandboxInfo> {
    if (request.image !== undefined) {
      throw new UnsupportedCapabilityError(
        'images',
        this.name,
        "Local sandboxes run the host's /usr read-only; install tools into /workspace, or use the docker provider for images.",
        { operation: 'create' },
      );
    }
    const { tools } = await this.#ready();
    const record: SandboxRecord = {
      version: 1,
      id: newSandboxId(),
      labels: { ...request.labels },
      env: { ...request.env },
      createdAt: new Date().toISOString(),
      status: 'running',
      network: this.#options.network,
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
      const started: SandboxRecord = { ...(await this.#start(record)) };
      delete started.creating;
      await this.home.write(started);
      created = true;
      return this.#info(started);
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
    const record = await this.#load(sandboxId, 'get');
    if (!hasIntent(record)) return this.#info(record);
    // An operation died part-way, or one is at work: repair now if nobody holds the sandbox.
    const release = await this.home.tryLock(sandboxId);
    if (!release) return this.#info(record);
    let gone = false;
    try {
      const current = await this.home.read(sandboxId, 'get');
      const repaired = current && (await repairRecord(this.home, current, { sandboxId, operation: 'get' }));
      gone = !repaired;
      if (!repaired) throw new SandboxNotFoundError(sandboxId, { provider: this.name, operation: 'get' });
      return this.#info(repaired);
    } finally {
      await release({ remove: gone });
    }
  }

  async list(filter: ListFilter = {}): Promise<SandboxInfo[]> {
    await this.#ready();
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
      if (wanted.every(([key, value]) => record.labels[key] === value)) infos.push(this.#info(record));
    }
    // What a create, fork or destroy that died left behind goes now, where nobody is at work on it.
    if (leftovers) await sweepSandboxes(this.home, undefined);
    return infos.sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  exec(sandboxId: string, request: ExecRequest): Promise<ExecOutput> {
    return this.#exec(sandboxId, request, 'exec');
  }

  async #exec(sandboxId: string, request: ExecRequest, operation: string): Promise<ExecOutput> {
    const record = await this.#running(sandboxId, operation);
    const { tools } = await this.#ready();
    const enter = enterArgs(
      tools,
      record.runtime!.initPid,
      record.network,
      this.#environment(record, request.env),
    );
    const argv =
      typeof request.command === 'string' ? ['/bin/sh', '-c', request.command] : [...request.command];
    const groups = record.runtime!.cgroups;
    if (groups && isFrozen(groups.freezer)) await this.#thawIfAbandoned(sandboxId);
    const execGroups = groups ? await createExecCgroups(groups) : undefined;
    try {
      const output = await runProcess({
        file: enter.file,
        // `cd` inside the sandbox: the cwd is a sandbox path, meaningless on the host.
        args: [
          ...enter.args,
          '/bin/sh',
          '-c',
          execWrapper,
          'statebox-exec',
          execGroups ? 'cgroups' : 'none',
          request.cwd,
          ...argv,
        ],
        env: HELPER_ENV,
        extraFds: execGroups?.fds,
        killAlso: execGroups && (() => killCgroup(execGroups)),
        stdin: request.stdin,
        timeoutMs: request.timeoutMs,
        signal: request.signal,
        maxOutputBytes: request.maxOutputBytes,
        onStdout: request.onStdout,
        onStderr: request.onStderr,
        sandboxId,
        operation,
      });
      if (output.exitCode !== 0) {
        const interrupted = await interruption(this.home, sandboxId, record.runtime!, operation);
        if (interrupted) throw interrupted;
      }
      return output;
    } finally {
      if (execGroups) {
        await execGroups.close();
        // Left in place while a background process the command started still runs in it.
        await removeExecCgroups(execGroups);
      }
    }
  }

  async readFile(sandboxId: string, path: string, options: ReadFileOptions): Promise<Uint8Array> {
    return readSandboxFile(
      (request) => this.#exec(sandboxId, request, 'readFile'),
      { sandboxId, provider: this.name },
      path,
      options,
    );
  }

  async writeFile(
    sandboxId: string,
    path: string,
    data: Uint8Array,
    options: WriteFileOptions = {},
  ): Promise<void> {
    await writeSandboxFile(
      (request) => this.#exec(sandboxId, request, 'writeFile'),
      { sandboxId, provider: this.name },
      path,
      data,
      options,
    );
  }

  async suspend(sandboxId: string): Promise<SandboxInfo> {
    return this.#locked(sandboxId, 'suspend', async (record) => {
      if (record.status === 'suspended') return this.#info(record);
      const suspended: SandboxRecord = { ...record, status: 'suspended' };
      delete suspended.runtime;
      if (record.runtime) {
        killInit(record.runtime);
        suspended.teardown = record.runtime;
      }
      await this.home.write(suspended);
      return this.#info(suspended);
    });
  }

  async resume(sandboxId: string): Promise<SandboxInfo> {
    return this.#locked(sandboxId, 'resume', async (record) => {
      if (record.status === 'running' && initIsAlive(record.runtime)) return this.#info(record);
      return this.#info(await this.#start(record));
    });
  }

  async fork(sandboxId: string, request: ForkRequest = {}): Promise<SandboxInfo> {
    return this.#locked(sandboxId, 'fork', async (source) => {
      const { tools } = await this.#ready();
      const host = { home: this.home, tools, start: (record: SandboxRecord) => this.#start(record) };
      const child = await forkSandbox(host, source, request);
      return this.#info(child);
    });
  }

  /**
   * Works on a corrupt record too (it kills whatever init of the sandbox runs, found by scanning the
   * host's processes), and removes trees of any depth.
   */
  async destroy(sandboxId: string): Promise<void> {
    await this.#ready();
    await destroySandbox(this.home, sandboxId);
  }

  terminal(sandboxId: string, request: TerminalRequest): Promise<TerminalSession> {
    const running = () => this.#running(sandboxId, 'terminal');
    const environment = (record: SandboxRecord) => this.#environment(record, request.env);
    return openTerminal({ running, ready: () => this.#ready(), environment }, request);
  }

  async usage(sandboxId: string): Promise<SandboxUsage> {
    return sandboxUsage(this.home, await this.#load(sandboxId, 'usage'));
  }

  async prune(options: PruneOptions): Promise<PruneReport> {
    await this.#ready();
    return pruneHome(this.home, options);
  }

  /** Starts the init (compacting a long layer chain first) and records it. Caller holds the lock. */
  async #start(record: SandboxRecord): Promise<SandboxRecord> {
    const { tools, runtime } = await this.#ready();
    let current = record;
    const { cgroups } = await this.#ready();
    const context = { sandboxId: record.id, operation: 'start' };
    if (current.teardown) {
      // The overlay of the last suspend must be gone before the same upper is mounted again.
      await waitForExit(current.teardown, context);
      if (current.teardown.cgroups) await removeSandboxCgroups(current.teardown.cgroups);
      current = { ...current };
      delete current.teardown;
    }
    if (current.layers.length > this.#options.maxLayers) {
      try {
        current = await compactLayers(this.home, current, tools);
      } catch (error) {
        // Say a path too long for `cp`: the chain still mounts as it is, up to a point.
        if (current.layers.length > MOUNTABLE_LAYERS) throw error;
      }
    }
    if (current.owner !== tools.sandboxUid && !tools.rootless) {
      // Made when sandbox commands ran as host root: hand their files to the sandbox uid once.
      await adoptRootOwnedFiles(
        [upperPath(this.home, current), ...current.layers.map((layer) => join(this.home.layersDir, layer))],
        { uid: tools.sandboxUid, gid: tools.sandboxGid },
      );
      current = { ...current, owner: tools.sandboxUid };
    }
    const sandboxDir = this.home.sandboxDir(current.id);
    const mountPoint = join(sandboxDir, 'mnt');
    const fstabPath = join(sandboxDir, 'fstab');
    await mkdir(mountPoint, { recursive: true });
    // A crashed mount can leave files in the work dir; overlayfs wants it empty.
    await removeTree(workPath(this.home, current));
    await mkdir(workPath(this.home, current));
    const fromLayers = (path: string) => relative(this.home.layersDir, path);
    const fstab = buildFstab({
      runtime,
      mountPoint,
      lowerLayers: current.layers,
      layersDir: this.home.layersDir,
      upper: fromLayers(upperPath(this.home, current)),
      work: fromLayers(workPath(this.home, current)),
      rootless: tools.rootless,
      durability: this.#options.durability,
      shmBytes: this.#options.limits.shmBytes,
    });
    await writeFile(fstabPath, fstab.system);
    await writeFile(`${fstabPath}.binds`, fstab.binds);
    // From here until the record names the init, a crash leaves an init nobody knows; the intent says so.
    current = { ...current, pendingStart: true };
    await this.home.write(current);
    // Groups of earlier starts that a crash or a slow teardown left; the lock is ours.
    if (cgroups) await sweepSandboxCgroups(cgroups, current.id);
    const groups = cgroups && (await createSandboxCgroups(cgroups, current.id, this.#options.limits));
    let init: RunningInit;
    try {
      init = await startInit(tools, {
        fstabPath,
        mountPoint,
        layersDir: this.home.layersDir,
        skeleton: runtime.skeleton,
        network: current.network,
        sandboxId: current.id,
        home: this.home.root,
      });
    } catch (error) {
      if (groups) await removeSandboxCgroups(groups);
      throw error;
    }
    if (groups) {
      try {
        await joinCgroups(groups, init.initPid);
        // The memory limit's OOM killer should pick a command, not the init that holds the sandbox
        // together (where allowed: it needs CAP_SYS_RESOURCE; a killed init is restarted by the next exec).
        await writeFile(`/proc/${init.initPid}/oom_score_adj`, '-1000').catch(() => undefined);
      } catch (error) {
        await stopInit(init);
        await removeSandboxCgroups(groups);
        throw new ProviderError(
          'local',
          `Could not put sandbox ${current.id} in its control groups: ${(error as Error).message}`,
          {
            sandboxId: current.id,
            operation: 'start',
            cause: error,
          },
        );
      }
      init = { ...init, cgroups: groups };
    }
    const started: SandboxRecord = { ...current, status: 'running', runtime: init };
    delete started.pendingStart;
    try {
      await this.home.write(started);
    } catch (error) {
      await stopInit(init);
      throw error;
    }
    return started;
  }

  /**
   * A sandbox found frozen by an exec: a fork freezes it only while holding its lock, so once the lock
   * is ours, a freeze still in place belongs to a fork that died, and is undone.
   */
  async #thawIfAbandoned(sandboxId: string): Promise<void> {
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
  async #load(sandboxId: string, operation: string): Promise<SandboxRecord> {
    await this.#ready();
    const record = await this.home.read(sandboxId, operation);
    if (!record || record.creating)
      throw new SandboxNotFoundError(sandboxId, { provider: this.name, operation });
    return record;
  }

  /**
   * Runs an action under the sandbox's lock, after repairing whatever an operation that died left (any
   * intent found under the lock is such a leftover). An action that fails part-way is repaired at once.
   */
  async #locked<T>(
    sandboxId: string,
    operation: string,
    action: (record: SandboxRecord) => Promise<T>,
  ): Promise<T> {
    await this.#load(sandboxId, operation);
    const release = await this.home.lock(sandboxId);
    const context = { sandboxId, operation };
    let gone = false;
    try {
      const loaded = await this.home.read(sandboxId, operation);
      const record = loaded && (await repairRecord(this.home, loaded, context));
      if (!record) {
        gone = true;
        throw new SandboxNotFoundError(sandboxId, { provider: this.name, operation });
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
  async #running(sandboxId: string, operation: string): Promise<SandboxRecord> {
    const record = await this.#load(sandboxId, operation);
    if (record.status === 'suspended' && !hasIntent(record)) throw suspendedError(sandboxId, operation);
    if (initIsAlive(record.runtime) && !hasIntent(record)) return record;
    return this.#locked(sandboxId, operation, async (current) => {
      if (current.status === 'suspended') throw suspendedError(sandboxId, operation);
      return initIsAlive(current.runtime) ? current : this.#start(current);
    });
  }

  #environment(record: SandboxRecord, extra: Record<string, string> | undefined): Record<string, string> {
    return {
      PATH: DEFAULT_PATH,
      HOME: '/root',
      USER: 'root',
      LOGNAME: 'root',
      HOSTNAME: 'sandbox',
      LANG: 'C.UTF-8',
      ...this.#options.env,
      ...record.env,
      ...extra,
    };
  }

  #info(record: SandboxRecord): SandboxInfo {
    return {
      id: record.id,
      provider: this.name,
      status: record.status,
      labels: record.labels,
      createdAt: record.createdAt,
      parentId: record.parentId,
      workdir: WORKDIR,
    };
  }
}

/**
 * $1 `cgroups` when fds 3-5 are the exec's `cgroup.procs` files to join before anything else runs (they
 * are closed before the command starts), $2 cwd, then the argv. Exits 126 with a clear message when the cwd is missing, as `docker exec` does. */
const execWrapper = `if [ "$1" = cgroups ]; then
  { echo 0 >&3 && echo 0 >&4 && echo 0 >&5; } 2>/dev/null || { echo "statebox: the sandbox stopped while this command was starting" >&2; exit 125; }
  exec 3>&- 4>&- 5>&-
fi
shift
cd -- "$1" 2>/dev/null || { echo "statebox: working directory $1 does not exist in the sandbox" >&2; exit 126; }
shift
exec "$@"`;

function suspendedError(sandboxId: string, operation: string): InvalidStateError {
  return new InvalidStateError(
    sandboxId,
    operation,
    'suspended',
    'Call resume() first; its files are all there.',
  );
}

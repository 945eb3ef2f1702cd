import { randomBytes } from 'node:crypto';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import {
  type CreateRequest,
  type ExecOutput,
  type ExecRequest,
  FileNotFoundError,
  type ForkRequest,
  InvalidPathError,
  InvalidStateError,
  type ListFilter,
  ProviderError,
  type ReadFileOptions,
  type SandboxCapabilities,
  type SandboxInfo,
  SandboxNotFoundError,
  type SandboxProvider,
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
  thawCgroup,
} from './cgroups.js';
import { readSandboxFile, writeSandboxFile } from './files.js';
import { Home, newSandboxId, removeTree, type SandboxRecord } from './home.js';
import {
  buildFstab,
  DEFAULT_SANDBOX_UID,
  enterArgs,
  freezeSandbox,
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
import {
  adoptRootOwnedFiles,
  collectGarbage,
  compactLayers,
  copyUpper,
  createUpper,
  isEmptyDir,
  repairSeal,
  sealUpper,
  smallTreeFingerprint,
  upperPath,
  workPath,
} from './layers.js';
import { type LocalOptions, type ResolvedLimits, resolveLimits } from './options.js';
import { runProcess } from './process.js';

const WORKDIR = '/workspace';
const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

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
    };
    await mkdir(this.home.sandboxDir(record.id), { mode: 0o700 });
    try {
      await createUpper(this.home, record, record.upper, true, {
        uid: tools.sandboxUid,
        gid: tools.sandboxGid,
      });
      await this.home.write({ ...record, status: 'suspended' });
      const started = await this.#start(record);
      return this.#info(started);
    } catch (error) {
      await removeTree(this.home.sandboxDir(record.id));
      throw error;
    }
  }

  async get(sandboxId: string): Promise<SandboxInfo> {
    return this.#info(await this.#load(sandboxId, 'get'));
  }

  async list(filter: ListFilter = {}): Promise<SandboxInfo[]> {
    await this.#ready();
    const wanted = Object.entries(filter.labels ?? {});
    const infos: SandboxInfo[] = [];
    for (const id of await this.home.ids()) {
      const record = await this.home.read(id).catch(() => undefined);
      if (!record) continue;
      if (wanted.every(([key, value]) => record.labels[key] === value)) infos.push(this.#info(record));
    }
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
      return await runProcess({
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
      const wasRunning = source.status === 'running';
      let sealed = source;
      // An upper that is still empty holds nothing to seal: the child can share the stack as it is,
      // and a running source keeps its processes. This makes N forks of one state cost one seal.
      const { tools } = await this.#ready();
      let childLayers: string[] | undefined;
      // A running source whose upper layer is small is copied while its processes are frozen: it keeps
      // running, and nothing waits for an overlay to unmount (90-470 ms with many cached files).
      let restart = false;
      const fingerprint =
        wasRunning && !tools.rootless && initIsAlive(source.runtime)
          ? await smallTreeFingerprint(upperPath(this.home, source))
          : undefined;
      const upperEmpty = await isEmptyDir(upperPath(this.home, source));
      if (fingerprint !== undefined && !upperEmpty) {
        if (source.liveCopy?.fingerprint === fingerprint) {
          childLayers = [source.liveCopy.layerId, ...source.layers];
        } else {
          // Under the layers lock: a concurrent destroy's garbage collection must not see the new layer
          // before the record that references it.
          const releaseLayers = await this.home.lock('layers');
          try {
            const thaw = await freezeSandbox(source.runtime!, source.runtime!.cgroups);
            if (thaw) {
              let layerId: string;
              try {
                layerId = await copyUpper(this.home, source);
              } finally {
                thaw();
              }
              childLayers = [layerId, ...source.layers];
              sealed = { ...source, liveCopy: { layerId, fingerprint } };
              await this.home.write(sealed);
            }
          } finally {
            await releaseLayers();
          }
        }
      }
      if (!childLayers && !upperEmpty) {
        if (source.runtime) await stopInit(source.runtime);
        if (source.teardown) await waitForExit(source.teardown);
        const releaseLayers = await this.home.lock('layers');
        try {
          const stopped: SandboxRecord = { ...source, status: 'suspended' };
          delete stopped.runtime;
          delete stopped.teardown;
          // The upper is about to become a sealed layer: a copy of it is no longer reusable.
          delete stopped.liveCopy;
          sealed = await sealUpper(this.home, stopped);
          restart = wasRunning;
        } finally {
          await releaseLayers();
        }
      }
      const child: SandboxRecord = {
        version: 1,
        id: newSandboxId(),
        labels: { ...request.labels },
        env: { ...source.env },
        createdAt: new Date().toISOString(),
        parentId: source.id,
        status: 'suspended',
        network: source.network,
        layers: childLayers ?? sealed.layers,
        upper: 'u-0',
        ...(sealed.owner !== undefined && { owner: sealed.owner }),
      };
      await mkdir(this.home.sandboxDir(child.id), { mode: 0o700 });
      try {
        await createUpper(this.home, child, child.upper, false);
        await this.home.write(child);
      } catch (error) {
        await removeTree(this.home.sandboxDir(child.id));
        throw error;
      }
      // Restart the source and start the child side by side: two cores, two independent inits.
      const [startedChild] = await Promise.all([
        this.#start(child).catch(async (error) => {
          await this.#remove(child);
          throw error;
        }),
        restart ? this.#start(sealed) : Promise.resolve(sealed),
      ]);
      return this.#info(startedChild);
    });
  }

  async destroy(sandboxId: string): Promise<void> {
    await this.#ready();
    if (!(await this.home.read(sandboxId))) return;
    const release = await this.home.lock(sandboxId);
    try {
      const record = await this.home.read(sandboxId);
      if (!record) return;
      await this.#remove(record);
    } finally {
      await release();
    }
  }

  /** Kills the sandbox, removes its directory and drops layers nobody uses any more. */
  async #remove(record: SandboxRecord): Promise<void> {
    if (record.runtime) await stopInit(record.runtime);
    if (record.teardown) await waitForExit(record.teardown);
    for (const groups of [record.runtime?.cgroups, record.teardown?.cgroups]) {
      if (groups) await removeSandboxCgroups(groups);
    }
    const trash = join(this.home.sandboxesDir, `.deleted-${record.id}-${randomBytes(3).toString('hex')}`);
    await rename(this.home.sandboxDir(record.id), trash);
    await removeTree(trash);
    const releaseLayers = await this.home.lock('layers');
    try {
      await collectGarbage(this.home);
    } finally {
      await releaseLayers();
    }
  }

  /** Starts the init (compacting a long layer chain first) and records it. Caller holds the lock. */
  async #start(record: SandboxRecord): Promise<SandboxRecord> {
    const { tools, runtime } = await this.#ready();
    let current = record;
    const { cgroups } = await this.#ready();
    if (current.teardown) {
      // The overlay of the last suspend must be gone before the same upper is mounted again.
      await waitForExit(current.teardown);
      if (current.teardown.cgroups) await removeSandboxCgroups(current.teardown.cgroups);
      current = { ...current };
      delete current.teardown;
    }
    if (current.layers.length > this.#options.maxLayers)
      current = await compactLayers(this.home, current, tools);
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

  /** Loads a record (repairing an interrupted seal) or throws SandboxNotFoundError. */
  async #load(sandboxId: string, operation: string): Promise<SandboxRecord> {
    await this.#ready();
    const record = await this.home.read(sandboxId);
    if (!record) throw new SandboxNotFoundError(sandboxId, { provider: this.name, operation });
    return record;
  }

  async #locked<T>(
    sandboxId: string,
    operation: string,
    action: (record: SandboxRecord) => Promise<T>,
  ): Promise<T> {
    await this.#load(sandboxId, operation);
    const release = await this.home.lock(sandboxId);
    try {
      let record = await this.#load(sandboxId, operation);
      if (record.pendingSeal) record = await repairSeal(this.home, record);
      return await action(record);
    } finally {
      await release();
    }
  }

  /** The record of a running sandbox whose init is alive, restarting an init that died (crash, reboot). */
  async #running(sandboxId: string, operation: string): Promise<SandboxRecord> {
    const record = await this.#load(sandboxId, operation);
    if (record.status === 'suspended') {
      throw new InvalidStateError(
        sandboxId,
        operation,
        'suspended',
        'Call resume() first; its files are all there.',
      );
    }
    if (initIsAlive(record.runtime) && !record.pendingSeal) return record;
    return this.#locked(sandboxId, operation, async (current) => {
      if (current.status === 'suspended') {
        throw new InvalidStateError(
          sandboxId,
          operation,
          'suspended',
          'Call resume() first; its files are all there.',
        );
      }
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

import { randomBytes } from 'node:crypto';
import { posix } from 'node:path';
import {
  type CreateRequest,
  DEFAULT_WORKDIR,
  type ExecOutput,
  type ExecRequest,
  FileNotFoundError,
  type ForkRequest,
  InvalidPathError,
  InvalidStateError,
  type ListFilter,
  OutputBuffer,
  ProviderError,
  type SandboxCapabilities,
  type SandboxInfo,
  SandboxNotFoundError,
  type SandboxProvider,
  type StateboxError,
  TimeoutError,
  TransientError,
  type WriteFileOptions,
} from '@statebox/core';
import { DockerApiError, DockerClient, parseDockerHost, StreamDemuxer } from './client.js';
import { isNoSuchContainer, isNoSuchImage, toStateboxError } from './errors.js';
import { hasOwnChanges, LayerStore } from './layers.js';
import { SandboxLocks } from './lock.js';
import type { ResolvedOptions } from './options.js';
import { killProcessTree } from './processes.js';
import { createTar, readFirstEntry, type TarInput } from './tar.js';

/** Label keys. Everything statebox knows about a sandbox is in these, on the container and its volume. */
const LABEL = {
  provider: 'statebox.provider',
  id: 'statebox.id',
  createdAt: 'statebox.created-at',
  parent: 'statebox.parent',
  userPrefix: 'statebox.label.',
  /**
   * The sandbox's own labels as JSON. The per-key labels above serve the daemon's label filter, but a
   * commit copies a container's labels into the image and a child container inherits them; this one is
   * always set at create, so it says which of them are the sandbox's own.
   */
  userLabels: 'statebox.labels',
  /** On volumes: the layer stack, top first (upper, then lowers), comma-separated. */
  layers: 'statebox.layers',
  /**
   * On the replacement a fork makes for a running source: the replacement is started right after the
   * fork returns, and until then it counts as running (exec starts it if this process did not).
   */
  autostart: 'statebox.autostart',
  /** On committed images, so that destroy deletes only what statebox made. */
  committed: 'statebox.committed',
} as const;

const PROVIDER = 'docker';
/** Paths that Docker adds to every container layer (mount points), which are not the sandbox's changes. */
const RUNTIME_MOUNT_POINTS = new Set([
  '/sbin',
  '/sbin/docker-init',
  // Where /sbin is a symlink to usr/sbin (Debian 12 and later), the init lands here.
  '/usr',
  '/usr/sbin',
  '/usr/sbin/docker-init',
  DEFAULT_WORKDIR,
]);
const SANDBOX_ID = /^sb-[0-9a-f]{16}$/;

type ContainerJson = {
  Id: string;
  Name: string;
  Created: string;
  Image: string;
  State: { Running: boolean; Paused: boolean; Status: string };
  Config: { Env: string[] | null; Labels: Record<string, string> | null; User: string };
  HostConfig: { NetworkMode: string };
  Mounts: { Type: string; Name?: string; Destination: string }[];
  GraphDriver?: { Name: string; Data?: { UpperDir?: string } };
};

type ContainerSummary = {
  Id: string;
  Names: string[];
  Labels: Record<string, string>;
  State: string;
  Created: number;
};
type VolumeJson = { Name: string; Labels: Record<string, string> | null };

export class DockerProvider implements SandboxProvider {
  readonly specificationVersion = 'statebox-v1' as const;
  readonly name = PROVIDER;
  readonly capabilities: SandboxCapabilities;
  readonly options: ResolvedOptions;
  readonly #client: DockerClient;
  readonly #layers: LayerStore;
  readonly #locks: SandboxLocks;
  readonly #retiring = new Set<Promise<void>>();
  /** Sources whose replacement this process is starting after a fork returned. */
  readonly #starting = new Map<string, Promise<void>>();
  #prepared: Promise<void> | undefined;

  constructor(options: ResolvedOptions) {
    this.options = options;
    this.#client = new DockerClient(parseDockerHost(options.host));
    this.#layers = new LayerStore(options.stateDir);
    this.#locks = new SandboxLocks(`${options.stateDir}/locks`);
    this.capabilities = {
      // `pause` keeps processes in memory; `stop` releases everything but the files.
      suspend: options.suspend === 'pause' ? 'memory' : 'filesystem',
      fork: 'filesystem',
      forkSuspended: true,
      // The source's upper layer is sealed, so its container is replaced by one over a fresh upper.
      forkSource: 'restarted',
      execStreaming: true,
      fileModes: true,
      symlinks: true,
      hardLinks: false,
    };
  }

  /** Waits for background clean-up, then closes the keep-alive connections to the daemon. */
  async close(): Promise<void> {
    await Promise.all([...this.#retiring, ...this.#starting.values()]);
    this.#client.close();
  }

  async create(request: CreateRequest): Promise<SandboxInfo> {
    const operation = 'create';
    await this.#prepare(operation);
    const sandboxId = `sb-${randomBytes(8).toString('hex')}`;
    const image = request.image ?? this.options.image;
    const labels: Record<string, string> = {
      [LABEL.provider]: PROVIDER,
      [LABEL.id]: sandboxId,
      [LABEL.createdAt]: new Date().toISOString(),
      [LABEL.autostart]: 'false',
      ...userLabels(request.labels),
    };
    const env = Object.entries(request.env ?? {}).map(([key, value]) => `${key}=${value}`);
    const upper = await this.#layers.createLayer();
    let volume: string | undefined;
    let containerId: string | undefined;
    try {
      volume = await this.#createVolume(sandboxId, upper, [this.#layers.emptyLayer], operation);
      containerId = await this.#createContainerPullingIfMissing(
        {
          name: containerName(sandboxId),
          image,
          env,
          labels,
          volume,
          network: this.options.network,
          user: '',
        },
        sandboxId,
      );
      await this.#call(operation, sandboxId, () =>
        this.#client.request('POST', `/containers/${containerId}/start`, { accept: [304] }),
      );
    } catch (error) {
      if (containerId) await this.#removeContainer(containerId);
      if (volume) await this.#removeVolume(volume);
      await this.#layers.removeLayer(upper);
      throw error;
    }
    return this.get(sandboxId);
  }

  async get(sandboxId: string): Promise<SandboxInfo> {
    return toInfo(await this.#inspect(sandboxId, 'get'));
  }

  async list(filter: ListFilter = {}): Promise<SandboxInfo[]> {
    const wanted = Object.entries(filter.labels ?? {});
    const label = [
      `${LABEL.provider}=${PROVIDER}`,
      ...wanted.map(([key, value]) => `${LABEL.userPrefix}${key}=${value}`),
    ];
    const { body } = await this.#call('list', undefined, () =>
      this.#client.request<ContainerSummary[]>('GET', '/containers/json', {
        query: { all: 1, filters: JSON.stringify({ label }) },
      }),
    );
    // A fork briefly keeps the source's old container under another name; only the named one counts.
    const current = body.filter(
      (summary) =>
        summary.Names.includes(`/${containerName(summary.Labels[LABEL.id] ?? '')}`) &&
        wanted.every(([key, value]) => ownLabels(summary.Labels)[key] === value),
    );
    return current
      .map((summary) =>
        infoFromLabels(
          summary.Labels,
          summary.State === 'running' ||
            (summary.State === 'created' && summary.Labels[LABEL.autostart] === 'true')
            ? 'running'
            : 'suspended',
          summary.Created,
        ),
      )
      .sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  async exec(sandboxId: string, request: ExecRequest): Promise<ExecOutput> {
    const operation = 'exec';
    const argv =
      typeof request.command === 'string' ? ['/bin/sh', '-c', request.command] : [...request.command];
    request.signal?.throwIfAborted();
    // A fork in this process freezes and then replaces the container; wait for it rather than fail.
    await this.#locks.idle(sandboxId);
    await this.#starting.get(sandboxId);
    let execId: string;
    const createExec = () =>
      this.#client.request<{ Id: string }>('POST', `/containers/${containerName(sandboxId)}/exec`, {
        body: {
          // docker-init (tini, mounted by HostConfig.Init) as a subreaper keeps even double-forked
          // children in this exec's process tree, so a timeout can kill all of them.
          Cmd: ['/sbin/docker-init', '-s', '--', ...argv],
          Env: Object.entries(request.env ?? {}).map(([key, value]) => `${key}=${value}`),
          WorkingDir: request.cwd,
          AttachStdin: request.stdin !== undefined,
          AttachStdout: true,
          AttachStderr: true,
          Tty: false,
        },
      });
    try {
      try {
        execId = (await createExec()).body.Id;
      } catch (error) {
        // A fork's replacement that another process created but did not get to start.
        if (!(await this.#startIfPending(error, sandboxId))) throw error;
        execId = (await createExec()).body.Id;
      }
    } catch (error) {
      throw await this.#explain(error, sandboxId, operation);
    }

    const stdout = new OutputBuffer(request.maxOutputBytes);
    const stderr = new OutputBuffer(request.maxOutputBytes);
    const socket = await this.#call(operation, sandboxId, () =>
      this.#client.hijack(`/exec/${execId}/start`, { Detach: false, Tty: false }),
    );
    const demuxer = new StreamDemuxer((stream, chunk) => {
      if (stream === 1) {
        stdout.push(chunk);
        request.onStdout?.(chunk);
      } else {
        stderr.push(chunk);
        request.onStderr?.(chunk);
      }
    });
    const ended = new Promise<void>((resolve) => {
      socket.on('data', (data: Buffer) => demuxer.push(data));
      socket.on('end', () => resolve());
      socket.on('close', () => resolve());
      socket.on('error', () => resolve());
    });
    if (request.stdin !== undefined) socket.end(request.stdin);

    let stopReason: 'timeout' | 'abort' | undefined;
    const stop = async (reason: 'timeout' | 'abort') => {
      if (stopReason) return;
      stopReason = reason;
      const { body } = await this.#client
        .request<{ Pid: number }>('GET', `/exec/${execId}/json`)
        .catch(() => ({ body: { Pid: 0 } }));
      if (body.Pid > 0) await killProcessTree(body.Pid);
      // The stream ends once every writer is dead; do not wait on it forever if something escaped.
      setTimeout(() => socket.destroy(), 2000).unref();
    };
    const timer =
      request.timeoutMs === undefined ? undefined : setTimeout(() => void stop('timeout'), request.timeoutMs);
    const onAbort = () => void stop('abort');
    request.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      await ended;
    } finally {
      if (timer) clearTimeout(timer);
      request.signal?.removeEventListener('abort', onAbort);
      socket.destroy();
    }

    if (stopReason === 'abort') throw request.signal?.reason ?? new Error('exec aborted');
    if (stopReason === 'timeout') {
      throw new TimeoutError(operation, request.timeoutMs!, {
        sandboxId,
        stdout: stdout.toBytes(),
        stderr: stderr.toBytes(),
      });
    }
    const exitCode = await this.#exitCode(execId, sandboxId);
    return {
      exitCode,
      stdout: stdout.toBytes(),
      stderr: stderr.toBytes(),
      truncated: { stdout: stdout.truncated, stderr: stderr.truncated },
    };
  }

  async readFile(sandboxId: string, path: string): Promise<Uint8Array> {
    const operation = 'readFile';
    let target = path;
    // Docker's archive endpoint returns a symlink itself, not its target; follow like open(2) would.
    for (let hops = 0; hops < 40; hops++) {
      let archive: Uint8Array;
      try {
        ({ body: archive } = await this.#client.request<Uint8Array>(
          'GET',
          `/containers/${containerName(sandboxId)}/archive`,
          {
            query: { path: target },
            binary: true,
          },
        ));
      } catch (error) {
        if (error instanceof DockerApiError && error.status === 404 && !isNoSuchContainer(error)) {
          throw new FileNotFoundError(path, { sandboxId, operation });
        }
        throw await this.#explain(error, sandboxId, operation);
      }
      const entry = readFirstEntry(archive);
      if (!entry) throw new FileNotFoundError(path, { sandboxId, operation });
      if (entry.type === 'symlink') {
        target = posix.resolve(posix.dirname(target), entry.linkName);
        continue;
      }
      if (entry.type === 'directory') {
        throw new InvalidPathError(
          path,
          'it is a directory, not a file. List it with exec(["ls", "-la", path]).',
          {
            sandboxId,
            operation,
          },
        );
      }
      return entry.data;
    }
    throw new ProviderError(
      PROVIDER,
      `readFile(${path}) in sandbox ${sandboxId}: too many levels of symbolic links.`,
      {
        sandboxId,
        operation,
      },
    );
  }

  async writeFile(
    sandboxId: string,
    path: string,
    data: Uint8Array,
    options: WriteFileOptions = {},
  ): Promise<void> {
    const operation = 'writeFile';
    await this.#locks.idle(sandboxId);
    const existing = await this.#stat(sandboxId, path, operation);
    if (existing?.isDirectory) {
      throw new InvalidPathError(path, 'it is a directory; writeFile needs a file path.', {
        sandboxId,
        operation,
      });
    }
    const mode = options.mode ?? existing?.permissions ?? 0o644;
    // Extract at the deepest existing ancestor, creating the missing directories from the archive:
    // PUT into a missing directory is a 404, and listing existing ones in the archive would reset their modes.
    const missing: string[] = [];
    let directory = posix.dirname(path);
    while (!existing && directory !== '/') {
      const stat = await this.#stat(sandboxId, directory, operation);
      if (stat) {
        if (!stat.isDirectory)
          throw new InvalidPathError(path, `${directory} is not a directory.`, { sandboxId, operation });
        break;
      }
      missing.unshift(directory);
      directory = posix.dirname(directory);
    }
    const base = directory;
    const relative = (absolute: string) => posix.relative(base, absolute);
    const entries: TarInput[] = [
      ...missing.map((dir) => ({ name: relative(dir), type: 'directory' as const, mode: 0o755 })),
      { name: relative(path), type: 'file', mode, data },
    ];
    try {
      await this.#client.request('PUT', `/containers/${containerName(sandboxId)}/archive`, {
        query: { path: base },
        raw: createTar(entries),
      });
    } catch (error) {
      throw await this.#explain(error, sandboxId, operation);
    }
  }

  async suspend(sandboxId: string): Promise<SandboxInfo> {
    if (!SANDBOX_ID.test(sandboxId)) return this.#suspend(sandboxId);
    return this.#locks.run(sandboxId, () => this.#suspend(sandboxId));
  }

  async #suspend(sandboxId: string): Promise<SandboxInfo> {
    const operation = 'suspend';
    await this.#starting.get(sandboxId);
    let container = await this.#inspect(sandboxId, operation);
    const name = containerName(sandboxId);
    if (isPendingStart(container)) {
      // Its label says "running" until it has run; start it so that the stop below is what counts.
      await this.#call(operation, sandboxId, () =>
        this.#client.request('POST', `/containers/${name}/start`, { accept: [304] }),
      );
      container = await this.#inspect(sandboxId, operation);
    }
    if (this.options.suspend === 'pause') {
      if (container.State.Running && !container.State.Paused) {
        await this.#call(operation, sandboxId, () =>
          this.#client.request('POST', `/containers/${name}/pause`),
        );
      }
    } else if (container.State.Running) {
      // With an init as PID 1, stop returns as soon as the container's processes are gone (~0.1 s);
      // without one, a `sleep` PID 1 ignores SIGTERM and stop waits out its timeout (10 s here).
      await this.#call(operation, sandboxId, () =>
        this.#client.request('POST', `/containers/${name}/stop`, { query: { t: 5 }, accept: [304] }),
      );
    }
    return this.get(sandboxId);
  }

  async resume(sandboxId: string): Promise<SandboxInfo> {
    if (!SANDBOX_ID.test(sandboxId)) return this.#resume(sandboxId);
    return this.#locks.run(sandboxId, () => this.#resume(sandboxId));
  }

  async #resume(sandboxId: string): Promise<SandboxInfo> {
    const operation = 'resume';
    const container = await this.#inspect(sandboxId, operation);
    const name = containerName(sandboxId);
    if (container.State.Paused) {
      await this.#call(operation, sandboxId, () =>
        this.#client.request('POST', `/containers/${name}/unpause`),
      );
    } else if (!container.State.Running) {
      await this.#call(operation, sandboxId, () =>
        this.#client.request('POST', `/containers/${name}/start`, { accept: [304] }),
      );
    }
    return this.get(sandboxId);
  }

  /**
   * Fork without copying the workspace:
   * 1. freeze the source (`pause`, ~20 ms) so its files and root filesystem hold still;
   * 2. commit its container layer (the small root-filesystem diff, not /workspace; ~50 ms);
   * 3. seal its workspace upper: parent and child each get a volume with a fresh upper over
   *    [sealed upper, ...older layers];
   * 4. create the child and the source's replacement from the commit (or the same image, when the root
   *    filesystem did not change), start the child, then, after returning, the replacement, and remove
   *    the frozen original, which never runs again. Until the child runs nothing of the source was
   *    changed, so a failure rolls back to the untouched source.
   */
  async fork(sandboxId: string, request: ForkRequest = {}): Promise<SandboxInfo> {
    if (!SANDBOX_ID.test(sandboxId)) return this.#fork(sandboxId, request);
    return this.#locks.run(sandboxId, () => this.#fork(sandboxId, request));
  }

  async #fork(sandboxId: string, request: ForkRequest = {}): Promise<SandboxInfo> {
    const operation = 'fork';
    await this.#prepare(operation);
    await this.#starting.get(sandboxId);
    const source = await this.#inspect(sandboxId, operation);
    await this.#sweepRetired(sandboxId);
    const sourceVolume = source.Mounts.find(
      (mount) => mount.Destination === DEFAULT_WORKDIR && mount.Type === 'volume',
    )?.Name;
    if (!sourceVolume) {
      throw new ProviderError(
        PROVIDER,
        `Sandbox ${sandboxId} has no statebox workspace volume; it cannot be forked.`,
        {
          sandboxId,
          operation,
        },
      );
    }
    const stack = await this.#volumeLayers(sourceVolume, sandboxId, operation);
    const wasRunning = source.State.Running && !source.State.Paused;
    const keepRunning = wasRunning || isPendingStart(source);
    const childId = `sb-${randomBytes(8).toString('hex')}`;
    const name = containerName(sandboxId);
    const retiredName = `${name}-retired-${randomBytes(3).toString('hex')}`;
    const sourceLabels = source.Config.Labels ?? {};
    const env = source.Config.Env ?? [];

    let parentContainer = '';
    const undo: (() => Promise<unknown>)[] = [];
    const rollback = async () => {
      for (const step of undo.reverse()) await step().catch(() => undefined);
    };
    try {
      if (wasRunning) {
        await this.#call(operation, sandboxId, () =>
          this.#client.request('POST', `/containers/${source.Id}/pause`),
        );
        undo.push(() => this.#client.request('POST', `/containers/${source.Id}/unpause`));
      }
      // The commit (~50 ms) and the layer bookkeeping do not depend on each other.
      const committing = this.#commit(source, sandboxId);
      committing.catch(() => undefined); // awaited below; this only keeps an early failure from going unhandled
      undo.push(async () => {
        const { image, committed } = await committing;
        if (committed) await this.#client.request('DELETE', `/images/${image}`);
      });
      let lowers = stack;
      if (this.#layers.needsCompaction(lowers, this.options.maxLayers)) {
        const flat = await this.#layers.flatten(lowers);
        undo.push(() => this.#layers.removeLayer(flat));
        lowers = [flat];
      }
      const [parentUpper, childUpper] = await Promise.all([
        this.#layers.createLayer(),
        this.#layers.createLayer(),
      ]);
      undo.push(() => this.#layers.removeLayer(parentUpper));
      undo.push(() => this.#layers.removeLayer(childUpper));
      const [parentVolume, childVolume] = await Promise.all([
        this.#createVolume(sandboxId, parentUpper, lowers, operation),
        this.#createVolume(childId, childUpper, lowers, operation),
      ]);
      undo.push(() => this.#removeVolume(parentVolume));
      undo.push(() => this.#removeVolume(childVolume));
      const { image } = await committing;
      const common = { image, env, network: source.HostConfig.NetworkMode, user: source.Config.User };

      // Two paths at once: the child is created and started; the source's container is renamed out of
      // the way and its replacement created under the sandbox's name. Only the child is started now:
      // two starts at once took 310–370 ms here against ~220 ms for one (the daemon serialises parts of
      // them), so the replacement starts right after the fork returns; until then it counts as running
      // and any operation on it waits for that start.
      const childPath = (async () => {
        const childContainer = await this.#createContainer(
          {
            ...common,
            name: containerName(childId),
            volume: childVolume,
            labels: {
              [LABEL.provider]: PROVIDER,
              [LABEL.id]: childId,
              [LABEL.createdAt]: new Date().toISOString(),
              [LABEL.parent]: sandboxId,
              [LABEL.autostart]: 'false',
              ...userLabels(request.labels),
            },
          },
          childId,
        );
        undo.push(() => this.#removeContainer(childContainer));
        await this.#call(operation, childId, () =>
          this.#client.request('POST', `/containers/${childContainer}/start`, { accept: [304] }),
        );
      })();
      const parentPath = (async () => {
        await this.#call(operation, sandboxId, () =>
          this.#client.request('POST', `/containers/${source.Id}/rename`, { query: { name: retiredName } }),
        );
        undo.push(() => this.#client.request('POST', `/containers/${source.Id}/rename`, { query: { name } }));
        parentContainer = await this.#createContainer(
          {
            ...common,
            name,
            volume: parentVolume,
            labels: { ...pickStateboxLabels(sourceLabels), [LABEL.autostart]: String(keepRunning) },
          },
          sandboxId,
        );
        undo.push(() => this.#removeContainer(parentContainer));
      })();
      // allSettled, not all: a rollback must wait until neither path can still add something to undo.
      const failure = (await Promise.allSettled([childPath, parentPath])).find(
        (result): result is PromiseRejectedResult => result.status === 'rejected',
      );
      if (failure) throw failure.reason;
    } catch (error) {
      await rollback();
      throw toStateboxError(error, { host: this.options.host, operation, sandboxId });
    }
    // The replacement runs: the frozen original never runs again, and its upper is now a sealed layer.
    // Removing it takes 0.1–0.2 s, so it happens after returning; the next fork of this sandbox, or its
    // destroy, removes it if this process exits first.
    if (keepRunning) this.#startInBackground(sandboxId, parentContainer);
    this.#retire(source.Id, sourceVolume);
    return this.get(childId);
  }

  async destroy(sandboxId: string): Promise<void> {
    if (!SANDBOX_ID.test(sandboxId)) return this.#destroy(sandboxId);
    return this.#locks.run(sandboxId, () => this.#destroy(sandboxId));
  }

  async #destroy(sandboxId: string): Promise<void> {
    const operation = 'destroy';
    await Promise.all(this.#retiring);
    await this.#starting.get(sandboxId);
    if (!SANDBOX_ID.test(sandboxId)) return;
    const label = JSON.stringify({ label: [`${LABEL.id}=${sandboxId}`] });
    const [{ body: containers }, { body: volumes }] = await Promise.all([
      this.#call(operation, sandboxId, () =>
        this.#client.request<ContainerSummary[]>('GET', '/containers/json', {
          query: { all: 1, filters: label },
        }),
      ),
      this.#call(operation, sandboxId, () =>
        this.#client.request<{ Volumes: VolumeJson[] | null }>('GET', '/volumes', {
          query: { filters: label },
        }),
      ),
    ]);
    const images = new Set<string>();
    for (const container of containers) {
      const { body } = await this.#client
        .request<ContainerJson>('GET', `/containers/${container.Id}/json`)
        .catch(() => ({ body: undefined }));
      if (body?.Config.Labels?.[LABEL.committed]) images.add(body.Image);
      await this.#call(operation, sandboxId, () =>
        this.#client.request('DELETE', `/containers/${container.Id}`, { query: { force: 1 }, accept: [404] }),
      );
    }
    // Layers shared with other sandboxes (sealed by a fork) stay until the last volume using them is gone.
    for (const volume of volumes.Volumes ?? []) await this.#removeVolume(volume.Name);
    // Committed images still used by another sandbox's container are refused (409): that is fine.
    for (const image of images)
      await this.#client.request('DELETE', `/images/${image}`).catch(() => undefined);
  }

  // ---------------------------------------------------------------------------------------------

  #startInBackground(sandboxId: string, containerId: string): void {
    const starting = this.#client
      .request('POST', `/containers/${containerId}/start`, { accept: [304] })
      .then(
        () => undefined,
        // Left to the next operation: exec and resume start a pending replacement themselves.
        () => undefined,
      )
      .finally(() => {
        if (this.#starting.get(sandboxId) === starting) this.#starting.delete(sandboxId);
      });
    this.#starting.set(sandboxId, starting);
  }

  /** After an exec failed on a container that is not running: starts it if it is a pending replacement. */
  async #startIfPending(error: unknown, sandboxId: string): Promise<boolean> {
    if (!(error instanceof DockerApiError && error.status === 409 && /not running/i.test(error.message)))
      return false;
    const container = await this.#inspect(sandboxId, 'exec');
    if (!isPendingStart(container)) return false;
    await this.#client.request('POST', `/containers/${container.Id}/start`, { accept: [304] });
    return true;
  }

  #retire(containerId: string, volume: string): void {
    const removal = (async () => {
      await this.#removeContainer(containerId);
      await this.#removeVolume(volume);
    })();
    this.#retiring.add(removal);
    void removal.finally(() => this.#retiring.delete(removal));
  }

  /** Removes what a fork left behind when its process exited before retiring the source's old container. */
  async #sweepRetired(sandboxId: string): Promise<void> {
    await Promise.all(this.#retiring);
    const { body } = await this.#call('fork', sandboxId, () =>
      this.#client.request<ContainerSummary[]>('GET', '/containers/json', {
        query: { all: 1, filters: JSON.stringify({ label: [`${LABEL.id}=${sandboxId}`] }) },
      }),
    );
    for (const leftover of body.filter(
      (summary) => !summary.Names.includes(`/${containerName(sandboxId)}`),
    )) {
      const { body: container } = await this.#client
        .request<ContainerJson>('GET', `/containers/${leftover.Id}/json`)
        .catch(() => ({ body: undefined }));
      await this.#removeContainer(leftover.Id);
      const volume = container?.Mounts.find((mount) => mount.Destination === DEFAULT_WORKDIR)?.Name;
      if (volume) await this.#removeVolume(volume);
    }
  }

  async #prepare(operation: string): Promise<void> {
    this.#prepared ??= this.#layers.prepare().catch((error: unknown) => {
      this.#prepared = undefined;
      throw new ProviderError(
        PROVIDER,
        `Cannot use the layer directory ${this.options.stateDir}: ${(error as Error).message}. ` +
          'Run as root on the Docker host, or set stateDir (STATEBOX_DOCKER_STATE_DIR) to a writable directory there.',
        { operation, cause: error },
      );
    });
    await this.#prepared;
  }

  async #inspect(sandboxId: string, operation: string): Promise<ContainerJson> {
    if (!SANDBOX_ID.test(sandboxId))
      throw new SandboxNotFoundError(sandboxId, { provider: PROVIDER, operation });
    try {
      const { body } = await this.#client.request<ContainerJson>(
        'GET',
        `/containers/${containerName(sandboxId)}/json`,
      );
      return body;
    } catch (error) {
      if (!isNoSuchContainer(error))
        throw toStateboxError(error, { host: this.options.host, operation, sandboxId });
    }
    // Not under its name: a fork may have died between renaming the original and creating its
    // replacement. The original, frozen or stopped, still holds the state; put its name back.
    const { body: found } = await this.#call(operation, sandboxId, () =>
      this.#client.request<ContainerSummary[]>('GET', '/containers/json', {
        query: { all: 1, filters: JSON.stringify({ label: [`${LABEL.id}=${sandboxId}`] }) },
      }),
    );
    const orphan = found.sort((a, b) => b.Created - a.Created)[0];
    if (!orphan) throw new SandboxNotFoundError(sandboxId, { provider: PROVIDER, operation });
    await this.#call(operation, sandboxId, () =>
      this.#client.request('POST', `/containers/${orphan.Id}/rename`, {
        query: { name: containerName(sandboxId) },
      }),
    );
    const { body } = await this.#call(operation, sandboxId, () =>
      this.#client.request<ContainerJson>('GET', `/containers/${orphan.Id}/json`),
    );
    return body;
  }

  /** Turns a failed call into the right error, checking whether the sandbox is gone or merely stopped. */
  async #explain(error: unknown, sandboxId: string, operation: string): Promise<StateboxError> {
    if (isNoSuchContainer(error)) {
      await this.#inspect(sandboxId, operation); // throws SandboxNotFoundError when it is really gone
      return new TransientError(
        `Sandbox ${sandboxId}: its container was being replaced by a fork in another process during ${operation}; retry.`,
        { sandboxId, operation },
      );
    }
    if (
      error instanceof DockerApiError &&
      error.status === 409 &&
      /not running|paused/i.test(error.message)
    ) {
      return new InvalidStateError(sandboxId, operation, 'suspended', 'Call resume() first.');
    }
    return toStateboxError(error, { host: this.options.host, operation, sandboxId });
  }

  async #call<T>(operation: string, sandboxId: string | undefined, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      throw toStateboxError(error, { host: this.options.host, operation, ...(sandboxId && { sandboxId }) });
    }
  }

  async #exitCode(execId: string, sandboxId: string): Promise<number> {
    // The stream can close a moment before the daemon records the exit code.
    for (let attempt = 0; ; attempt++) {
      const { body } = await this.#call('exec', sandboxId, () =>
        this.#client.request<{ Running: boolean; ExitCode: number | null }>('GET', `/exec/${execId}/json`),
      );
      if (!body.Running && body.ExitCode !== null) return body.ExitCode;
      if (attempt > 200) return body.ExitCode ?? -1;
      await new Promise((resolve) => setTimeout(resolve, attempt < 10 ? 2 : 20));
    }
  }

  /** Stats a path through the archive endpoint: undefined when it does not exist. */
  async #stat(
    sandboxId: string,
    path: string,
    operation: string,
  ): Promise<{ isDirectory: boolean; permissions: number } | undefined> {
    let response: { status: number; headers: Record<string, string | string[] | undefined> };
    try {
      response = await this.#client.head(`/containers/${containerName(sandboxId)}/archive`, { path });
    } catch (error) {
      throw await this.#explain(error, sandboxId, operation);
    }
    if (response.status === 404) {
      // HEAD has no body, so "no such container" and "no such file" look alike: tell them apart.
      await this.#inspect(sandboxId, operation);
      return undefined;
    }
    const header = response.headers['x-docker-container-path-stat'];
    if (response.status >= 400 || typeof header !== 'string') {
      throw toStateboxError(new DockerApiError(response.status, `cannot stat ${path}`, 'archive'), {
        host: this.options.host,
        operation,
        sandboxId,
      });
    }
    const stat = JSON.parse(Buffer.from(header, 'base64').toString('utf8')) as { mode: number };
    return fromGoFileMode(stat.mode);
  }

  async #volumeLayers(volume: string, sandboxId: string, operation: string): Promise<string[]> {
    const { body } = await this.#call(operation, sandboxId, () =>
      this.#client.request<VolumeJson>('GET', `/volumes/${volume}`),
    );
    const layers = parseLayers(body.Labels);
    if (layers.length < 2) {
      throw new ProviderError(
        PROVIDER,
        `Volume ${volume} of sandbox ${sandboxId} has no layer labels; it was not made by statebox.`,
        {
          sandboxId,
          operation,
        },
      );
    }
    return layers;
  }

  async #createVolume(
    sandboxId: string,
    upper: string,
    lowers: readonly string[],
    operation: string,
  ): Promise<string> {
    const volume = `statebox-${sandboxId}-${upper}`;
    await this.#layers.createWorkdir(volume);
    await this.#call(operation, sandboxId, () =>
      this.#client.request('POST', '/volumes/create', {
        body: {
          Name: volume,
          Driver: 'local',
          DriverOpts: {
            type: 'overlay',
            device: 'overlay',
            o: this.#layers.mountOptions(upper, lowers, volume),
          },
          Labels: {
            [LABEL.provider]: PROVIDER,
            [LABEL.id]: sandboxId,
            [LABEL.layers]: [upper, ...lowers].join(','),
          },
        },
      }),
    );
    return volume;
  }

  /**
   * Removes a workspace volume, its overlay workdir, and those of its layers that no other volume uses
   * (a fork's flattening, a destroy or a retired source can leave a layer with no other user).
   */
  async #removeVolume(volume: string): Promise<void> {
    const inspected = await this.#client
      .request<VolumeJson>('GET', `/volumes/${volume}`)
      .catch(() => ({ body: undefined }));
    const removed = await this.#client
      .request('DELETE', `/volumes/${volume}`, { accept: [404] })
      .then(() => true)
      .catch(() => false);
    if (!removed) return;
    await this.#layers.removeWorkdir(volume);
    const candidates = new Set(parseLayers(inspected.body?.Labels ?? null));
    if (candidates.size === 0) return;
    const { body } = await this.#client
      .request<{ Volumes: VolumeJson[] | null }>('GET', '/volumes', {
        query: { filters: JSON.stringify({ label: [`${LABEL.provider}=${PROVIDER}`] }) },
      })
      .catch(() => ({ body: { Volumes: null } }));
    if (!body.Volumes) return;
    for (const other of body.Volumes) for (const layer of parseLayers(other.Labels)) candidates.delete(layer);
    for (const layer of candidates) await this.#layers.removeLayer(layer);
  }

  async #removeContainer(containerId: string): Promise<void> {
    await this.#client
      .request('DELETE', `/containers/${containerId}`, { query: { force: 1 }, accept: [404] })
      .catch(() => undefined);
  }

  async #createContainer(spec: ContainerSpec, sandboxId: string): Promise<string> {
    try {
      const { body } = await this.#client.request<{ Id: string }>('POST', '/containers/create', {
        query: { name: spec.name },
        body: {
          Image: spec.image,
          // Override any entrypoint: the container only has to stay up; work happens in execs.
          Entrypoint: ['sleep'],
          Cmd: ['infinity'],
          Env: spec.env,
          User: spec.user,
          WorkingDir: DEFAULT_WORKDIR,
          Labels: spec.labels,
          HostConfig: {
            // Without an init, `sleep` as PID 1 ignores SIGTERM and every stop waits 10 s.
            Init: true,
            NetworkMode: spec.network,
            Mounts: [
              // NoCopy: a new workspace starts empty even if the image has files at /workspace.
              {
                Type: 'volume',
                Source: spec.volume,
                Target: DEFAULT_WORKDIR,
                VolumeOptions: { NoCopy: true },
              },
            ],
          },
        },
      });
      return body.Id;
    } catch (error) {
      if (isNoSuchImage(error)) throw error;
      throw toStateboxError(error, { host: this.options.host, operation: 'create', sandboxId });
    }
  }

  async #createContainerPullingIfMissing(spec: ContainerSpec, sandboxId: string): Promise<string> {
    try {
      return await this.#createContainer(spec, sandboxId);
    } catch (error) {
      if (!isNoSuchImage(error)) throw error;
    }
    let pullFailure = '';
    if (this.options.pull === 'missing') {
      try {
        await this.#pull(spec.image);
        return await this.#createContainer(spec, sandboxId);
      } catch (error) {
        if (!isNoSuchImage(error) && !(error instanceof DockerApiError)) throw error;
        pullFailure = ` Pulling it failed: ${(error as Error).message}.`;
      }
    }
    throw new ProviderError(
      PROVIDER,
      `Image ${spec.image} is not in the Docker daemon at ${this.options.host}.${pullFailure} ` +
        'Without a registry, build one from Debian packages: `packages/docker/scripts/build-debian-image.sh` ' +
        '(statebox/debian:bookworm, ~1 min) or `packages/docker/scripts/build-test-image.sh` (statebox/busybox:test, 1 s); ' +
        `with one, \`docker pull ${spec.image}\`. Pass another image with create({ image }) or the 'image' option.`,
      { sandboxId, operation: 'create' },
    );
  }

  async #pull(image: string): Promise<void> {
    const [fromImage, tag] = splitImage(image);
    const { body } = await this.#client.request<Buffer>('POST', '/images/create', {
      query: { fromImage, tag },
      binary: true,
    });
    // Pull reports failures inside its progress stream, with HTTP 200.
    const text = Buffer.from(body).toString('utf8');
    const failure = /"error"\s*:\s*"([^"]*)"/.exec(text);
    if (failure) throw new DockerApiError(404, failure[1]!, '/images/create');
  }

  /** Commits the container's root-filesystem diff; squashes it first when the chain gets too deep. */
  async #commit(container: ContainerJson, sandboxId: string): Promise<{ image: string; committed: boolean }> {
    const operation = 'fork';
    // Most sandboxes only write under /workspace, which is not in the container layer. Then there is
    // nothing to commit: reuse the image (saves the ~50 ms commit, and the chain does not grow).
    let changed: boolean | undefined;
    const upperDir =
      container.GraphDriver?.Name === 'overlay2' ? container.GraphDriver.Data?.UpperDir : undefined;
    if (upperDir) changed = await hasOwnChanges(upperDir, RUNTIME_MOUNT_POINTS);
    if (changed === undefined) {
      const { body: changes } = await this.#call(operation, sandboxId, () =>
        this.#client.request<{ Path: string }[] | null>('GET', `/containers/${container.Id}/changes`),
      );
      changed = (changes ?? []).some((change) => !RUNTIME_MOUNT_POINTS.has(change.Path));
    }
    if (!changed) return { image: container.Image, committed: false };
    const { body } = await this.#call(operation, sandboxId, () =>
      this.#client.request<{ Id: string }>(
        'POST',
        `/commit?container=${container.Id}&pause=false&changes=${encodeURIComponent(`LABEL ${LABEL.committed}=true`)}`,
      ),
    );
    const { body: image } = await this.#call(operation, sandboxId, () =>
      this.#client.request<{ RootFS: { Layers?: string[] } }>('GET', `/images/${body.Id}/json`),
    );
    if ((image.RootFS.Layers?.length ?? 0) < this.options.maxImageDepth)
      return { image: body.Id, committed: true };
    // Docker refuses images deeper than 125 layers ("max depth exceeded"): flatten to one layer.
    const squashed = await this.#call(operation, sandboxId, () =>
      this.#client.squash(container.Id, [`LABEL ${LABEL.committed}=true`]),
    );
    await this.#client.request('DELETE', `/images/${body.Id}`).catch(() => undefined);
    return { image: squashed, committed: true };
  }
}

type ContainerSpec = {
  name: string;
  image: string;
  env: string[];
  user: string;
  labels: Record<string, string>;
  volume: string;
  network: string;
};

function containerName(sandboxId: string): string {
  return `statebox-${sandboxId}`;
}

function userLabels(labels: Record<string, string> | undefined): Record<string, string> {
  return {
    ...Object.fromEntries(
      Object.entries(labels ?? {}).map(([key, value]) => [`${LABEL.userPrefix}${key}`, value]),
    ),
    [LABEL.userLabels]: JSON.stringify(labels ?? {}),
  };
}

function ownLabels(labels: Record<string, string>): Record<string, string> {
  try {
    return JSON.parse(labels[LABEL.userLabels] ?? '{}') as Record<string, string>;
  } catch {
    return {};
  }
}

function pickStateboxLabels(labels: Record<string, string>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(labels).filter(([key]) => key.startsWith('statebox.') && key !== LABEL.committed),
  );
}

function parseLayers(labels: Record<string, string> | null): string[] {
  return (labels?.[LABEL.layers] ?? '').split(',').filter(Boolean);
}

/** A fork's replacement of a running source that was created but has not been started yet. */
function isPendingStart(container: ContainerJson): boolean {
  return container.State.Status === 'created' && container.Config.Labels?.[LABEL.autostart] === 'true';
}

function toInfo(container: ContainerJson): SandboxInfo {
  const running = (container.State.Running && !container.State.Paused) || isPendingStart(container);
  return infoFromLabels(
    container.Config.Labels ?? {},
    running ? 'running' : 'suspended',
    Date.parse(container.Created) / 1000,
  );
}

function infoFromLabels(
  labels: Record<string, string>,
  status: 'running' | 'suspended',
  created: number,
): SandboxInfo {
  const user = ownLabels(labels);
  return {
    id: labels[LABEL.id]!,
    provider: PROVIDER,
    status,
    labels: user,
    createdAt: labels[LABEL.createdAt] ?? new Date(created * 1000).toISOString(),
    parentId: labels[LABEL.parent],
    workdir: DEFAULT_WORKDIR,
  };
}

/** Go's `os.FileMode` (what Docker's stat header carries) to a directory flag and Unix permission bits. */
function fromGoFileMode(mode: number): { isDirectory: boolean; permissions: number } {
  const bits = mode >>> 0;
  let permissions = bits & 0o777;
  if (bits & (1 << 23)) permissions |= 0o4000;
  if (bits & (1 << 22)) permissions |= 0o2000;
  if (bits & (1 << 20)) permissions |= 0o1000;
  return { isDirectory: (bits & 0x80000000) !== 0, permissions };
}

function splitImage(image: string): [string, string] {
  const at = image.indexOf('@');
  if (at !== -1) return [image.slice(0, at), image.slice(at + 1)];
  const colon = image.lastIndexOf(':');
  if (colon > image.lastIndexOf('/')) return [image.slice(0, colon), image.slice(colon + 1)];
  return [image, 'latest'];
}

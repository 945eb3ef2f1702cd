import {
  type CreateRequest,
  type ExecOutput,
  type ExecRequest,
  type ForkRequest,
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
  type WriteFileOptions,
} from '@statebox/core';
import { dockerCapabilities } from './capabilities.js';
import { execCommand } from './exec.js';
import { readSandboxFile, writeSandboxFile } from './files.js';
import { forkSandbox, newSandboxId, recoverSandbox } from './fork.js';
import {
  type ContainerJson,
  type ContainerSummary,
  containerName,
  infoFromLabels,
  isPendingStart,
  LABEL,
  ownLabels,
  PROVIDER,
  SANDBOX_ID,
  toInfo,
  userLabels,
  type VolumeJson,
} from './labels.js';
import { createEgressNetwork, egressNetworkName, removeNetwork } from './network.js';
import type { ResolvedOptions } from './options.js';
import { pruneState, sandboxUsage } from './prune.js';
import { type Limits, Sandboxes } from './sandboxes.js';
import { openTerminal } from './terminal.js';

export class DockerProvider implements SandboxProvider {
  readonly specificationVersion = 'statebox-v1' as const;
  readonly name = PROVIDER;
  readonly capabilities: SandboxCapabilities;
  readonly options: ResolvedOptions;
  readonly #sandboxes: Sandboxes;
  /** Whether execs can be put in cgroups of their own: the daemon is local and this process is root. */
  readonly #tracking: boolean;

  constructor(options: ResolvedOptions) {
    this.options = options;
    this.#sandboxes = new Sandboxes(options, recoverSandbox);
    this.#tracking = 'socketPath' in this.#sandboxes.client.endpoint && process.getuid?.() === 0;
    this.capabilities = dockerCapabilities(options.suspend);
  }

  /** Waits for background clean-up, then closes the keep-alive connections to the daemon. */
  async close(): Promise<void> {
    await this.#sandboxes.close();
  }

  async create(request: CreateRequest): Promise<SandboxInfo> {
    const operation = 'create';
    const sandboxes = this.#sandboxes;
    await sandboxes.prepare(operation);
    const sandboxId = newSandboxId();
    const limits = await this.#limits(sandboxId);
    const labels: Record<string, string> = {
      [LABEL.provider]: PROVIDER,
      [LABEL.id]: sandboxId,
      [LABEL.createdAt]: new Date().toISOString(),
      [LABEL.autostart]: 'false',
      ...userLabels(request.labels),
    };
    const env = Object.entries(request.env ?? {}).map(([key, value]) => `${key}=${value}`);
    const upper = await sandboxes.layers.createLayer();
    let volume: string | undefined;
    let network: string | undefined;
    let containerId: string | undefined;
    try {
      volume = await sandboxes.createVolume(sandboxId, upper, [sandboxes.layers.emptyLayer], operation);
      if (this.options.network === 'egress') {
        network = await sandboxes.call(operation, sandboxId, () =>
          createEgressNetwork(sandboxes.client, sandboxId, this.options.egressSubnets, {
            [LABEL.provider]: PROVIDER,
            [LABEL.id]: sandboxId,
          }),
        );
      }
      const networkMode = network ?? 'none';
      containerId = await sandboxes.createContainerPullingIfMissing(
        {
          name: containerName(sandboxId),
          image: request.image ?? this.options.image,
          env,
          labels,
          volume,
          network: networkMode,
          user: '',
          limits,
        },
        sandboxId,
      );
      await sandboxes.start(containerId, networkMode, sandboxId, operation);
    } catch (error) {
      if (containerId) await sandboxes.removeContainer(containerId);
      if (network) await removeNetwork(sandboxes.client, network);
      if (volume) await sandboxes.removeVolume(volume);
      await sandboxes.layers.removeLayer(upper);
      throw error;
    }
    return this.get(sandboxId);
  }

  /** The limits of a new sandbox, after checking that the daemon can apply a disk quota when one is asked. */
  async #limits(sandboxId: string): Promise<Limits> {
    const { pidsLimit, memoryBytes, shmBytes, cpus, diskBytes } = this.options;
    if (diskBytes > 0) {
      const { body } = await this.#sandboxes.call('create', sandboxId, () =>
        this.#sandboxes.client.request<{ Driver: string; DriverStatus: [string, string][] | null }>(
          'GET',
          '/info',
        ),
      );
      const backing = body.DriverStatus?.find(([key]) => key === 'Backing Filesystem')?.[1] ?? 'unknown';
      if (body.Driver !== 'overlay2' || backing !== 'xfs') {
        throw new ProviderError(
          PROVIDER,
          `Cannot create a sandbox with diskBytes ${diskBytes}: a disk quota needs Docker's overlay2 driver on xfs ` +
            `mounted with pquota, and this daemon runs ${body.Driver} on ${backing}. Set diskBytes: 0 (no quota; ` +
            'see the README on what a sandbox can fill), or move the Docker data root to such a filesystem.',
          { sandboxId, operation: 'create' },
        );
      }
    }
    return {
      PidsLimit: pidsLimit,
      Memory: memoryBytes,
      // Equal to Memory: no swap on top of the limit.
      MemorySwap: memoryBytes,
      ShmSize: shmBytes,
      NanoCpus: Math.round(cpus * 1e9),
      ...(diskBytes > 0 && { StorageOpt: { size: String(diskBytes) } }),
    };
  }

  async get(sandboxId: string): Promise<SandboxInfo> {
    return toInfo(await this.#sandboxes.inspect(sandboxId, 'get'));
  }

  async list(filter: ListFilter = {}): Promise<SandboxInfo[]> {
    const wanted = Object.entries(filter.labels ?? {});
    const label = [
      `${LABEL.provider}=${PROVIDER}`,
      ...wanted.map(([key, value]) => `${LABEL.userPrefix}${key}=${value}`),
    ];
    const { body } = await this.#sandboxes.call('list', undefined, () =>
      this.#sandboxes.client.request<ContainerSummary[]>('GET', '/containers/json', {
        query: { all: 1, filters: JSON.stringify({ label }) },
      }),
    );
    // A fork briefly keeps other containers of a sandbox under other names; only the named one counts.
    const current = body.filter(
      (summary) =>
        summary.Names.includes(`/${containerName(summary.Labels[LABEL.id] ?? '')}`) &&
        wanted.every(([key, value]) => ownLabels(summary.Labels)[key] === value),
    );
    // A source that a fork froze or stopped and then died in: its next operation runs it again.
    const forked = new Set<string>();
    for (const summary of current) {
      if (summary.State !== 'running' && summary.State !== 'created') {
        const journal = await this.#sandboxes.journals.read(summary.Labels[LABEL.id] ?? '');
        if (journal && journal !== 'unreadable' && journal.keepRunning) forked.add(summary.Id);
      }
    }
    return current
      .map((summary) => {
        // Paused is a suspended sandbox with suspend: 'pause', and a source a fork froze for a moment otherwise.
        const running =
          summary.State === 'running' ||
          forked.has(summary.Id) ||
          (summary.State === 'paused' && this.options.suspend === 'stop') ||
          (summary.State === 'created' && summary.Labels[LABEL.autostart] === 'true');
        return infoFromLabels(summary.Labels, running ? 'running' : 'suspended', summary.Created);
      })
      .sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  exec(sandboxId: string, request: ExecRequest): Promise<ExecOutput> {
    return execCommand(this.#sandboxes, this.#tracking, sandboxId, request);
  }

  readFile(sandboxId: string, path: string, options: ReadFileOptions): Promise<Uint8Array> {
    return readSandboxFile(this.#sandboxes, sandboxId, path, options);
  }

  writeFile(
    sandboxId: string,
    path: string,
    data: Uint8Array,
    options: WriteFileOptions = {},
  ): Promise<void> {
    return writeSandboxFile(this.#sandboxes, sandboxId, path, data, options);
  }

  async suspend(sandboxId: string): Promise<SandboxInfo> {
    const operation = 'suspend';
    const sandboxes = this.#sandboxes;
    await sandboxes.inspect(sandboxId, operation); // not found before taking a lock
    return sandboxes.locked(sandboxId, operation, async () => {
      await sandboxes.starting.get(sandboxId);
      let container = await this.#current(sandboxId, operation);
      const name = containerName(sandboxId);
      if (isPendingStart(container)) {
        // Its label says "running" until it has run; start it so that the stop below is what counts.
        await sandboxes.start(container.Id, container.HostConfig.NetworkMode, sandboxId, operation);
        container = await this.#current(sandboxId, operation);
      }
      if (this.options.suspend === 'pause') {
        if (container.State.Running && !container.State.Paused) {
          await sandboxes.call(operation, sandboxId, () =>
            sandboxes.client.request('POST', `/containers/${name}/pause`),
          );
        }
      } else if (container.State.Running) {
        // With an init as PID 1, stop returns as soon as the container's processes are gone (~0.1 s).
        await sandboxes.call(operation, sandboxId, () =>
          sandboxes.client.request('POST', `/containers/${name}/stop`, { query: { t: 5 }, accept: [304] }),
        );
      }
      return toInfo(await this.#current(sandboxId, operation));
    });
  }

  async resume(sandboxId: string): Promise<SandboxInfo> {
    const operation = 'resume';
    const sandboxes = this.#sandboxes;
    await sandboxes.inspect(sandboxId, operation);
    return sandboxes.locked(sandboxId, operation, async () => {
      const container = await this.#current(sandboxId, operation);
      if (container.State.Paused) {
        await sandboxes.call(operation, sandboxId, () =>
          sandboxes.client.request('POST', `/containers/${container.Id}/unpause`),
        );
      } else if (!container.State.Running) {
        await sandboxes.start(container.Id, container.HostConfig.NetworkMode, sandboxId, operation);
      }
      return toInfo(await this.#current(sandboxId, operation));
    });
  }

  async fork(sandboxId: string, request: ForkRequest = {}): Promise<SandboxInfo> {
    await this.#sandboxes.inspect(sandboxId, 'fork');
    return this.#sandboxes.locked(sandboxId, 'fork', () => forkSandbox(this.#sandboxes, sandboxId, request));
  }

  async destroy(sandboxId: string): Promise<void> {
    if (!SANDBOX_ID.test(sandboxId)) return;
    const operation = 'destroy';
    const sandboxes = this.#sandboxes;
    await sandboxes.locked(sandboxId, operation, async () => {
      await Promise.all(sandboxes.retiring);
      await sandboxes.starting.get(sandboxId);
      const label = JSON.stringify({ label: [`${LABEL.id}=${sandboxId}`] });
      const [{ body: containers }, { body: volumes }] = await Promise.all([
        sandboxes.call(operation, sandboxId, () =>
          sandboxes.client.request<ContainerSummary[]>('GET', '/containers/json', {
            query: { all: 1, filters: label },
          }),
        ),
        sandboxes.call(operation, sandboxId, () =>
          sandboxes.client.request<{ Volumes: VolumeJson[] | null }>('GET', '/volumes', {
            query: { filters: label },
          }),
        ),
      ]);
      const images = new Set<string>();
      for (const container of containers) {
        const { body } = await sandboxes.client
          .request<ContainerJson>('GET', `/containers/${container.Id}/json`)
          .catch(() => ({ body: undefined }));
        if (body?.Config.Labels?.[LABEL.committed]) images.add(body.Image);
        await sandboxes.call(operation, sandboxId, async () => {
          for (let attempt = 0; ; attempt++) {
            const { status } = await sandboxes.client.request('DELETE', `/containers/${container.Id}`, {
              query: { force: 1 },
              // 409 "removal already in progress": a destroy whose process died started it; wait for it.
              accept: [404, 409],
            });
            if (status !== 409) return;
            if (attempt >= 200)
              throw new Error(`container ${container.Id} is still being removed after 20 s`);
            await new Promise((resolve) => setTimeout(resolve, 100));
          }
        });
      }
      await removeNetwork(sandboxes.client, egressNetworkName(sandboxId));
      // Layers shared with other sandboxes (sealed by a fork) stay until the last volume using them is gone.
      for (const volume of volumes.Volumes ?? []) await sandboxes.removeVolume(volume.Name);
      // Committed images still used by another sandbox's container are refused (409): that is fine.
      for (const image of images)
        await sandboxes.client.request('DELETE', `/images/${image}`).catch(() => undefined);
      await sandboxes.locks.forget(sandboxId);
    });
  }

  terminal(sandboxId: string, request: TerminalRequest): Promise<TerminalSession> {
    return openTerminal(this.#sandboxes, sandboxId, request);
  }

  usage(sandboxId: string): Promise<SandboxUsage> {
    return sandboxUsage(this.#sandboxes, sandboxId);
  }

  prune(options: PruneOptions): Promise<PruneReport> {
    return pruneState(this.#sandboxes, options);
  }

  /** The container under the lock (a missing one is not found: the lock's repair already ran). */
  async #current(sandboxId: string, operation: string): Promise<ContainerJson> {
    const container = await this.#sandboxes.inspectRaw(sandboxId, operation);
    if (!container) throw new SandboxNotFoundError(sandboxId, { provider: PROVIDER, operation });
    return container;
  }
}

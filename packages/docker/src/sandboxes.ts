import { KeyedLocks } from '@statebox/adapter-kit';
import {
  DEFAULT_WORKDIR,
  InvalidStateError,
  ProviderError,
  SandboxNotFoundError,
  type StateboxError,
  TransientError,
} from '@statebox/core';
import { DockerApiError, DockerClient, parseDockerHost } from './client.js';
import { isNoSuchContainer, isNoSuchImage, toStateboxError } from './errors.js';
import { Journals } from './journal.js';
import {
  type ContainerJson,
  type ContainerSummary,
  containerName,
  isPendingStart,
  LABEL,
  PROVIDER,
  parseLayers,
  SANDBOX_ID,
  splitImage,
  type VolumeJson,
  workspaceVolume,
} from './labels.js';
import { LayerStore } from './layers.js';
import { ensureFirewall, isEgressNetwork } from './network.js';
import type { ResolvedOptions } from './options.js';

/** Resource limits of a container, as the Engine API names them. */
export type Limits = {
  PidsLimit: number;
  Memory: number;
  MemorySwap: number;
  ShmSize: number;
  NanoCpus: number;
  StorageOpt?: Record<string, string>;
};

export type ContainerSpec = {
  name: string;
  image: string;
  env: string[];
  user: string;
  labels: Record<string, string>;
  volume: string;
  network: string;
  limits: Limits;
};

/** Repairs what a killed fork left; set by the provider (it lives with fork, which it undoes). */
export type Recovery = (sandboxes: Sandboxes, sandboxId: string) => Promise<void>;

/**
 * What every operation needs: the daemon client, the layer store, the locks, and the container, volume and
 * state helpers that the spec methods share. It keeps no sandbox state of its own: everything is in the
 * daemon (labels) and in the state directory, so another process sees the same.
 */
export class Sandboxes {
  readonly options: ResolvedOptions;
  readonly client: DockerClient;
  readonly layers: LayerStore;
  readonly locks: KeyedLocks;
  readonly journals: Journals;
  readonly retiring = new Set<Promise<void>>();
  /** Sources whose replacement this process is starting after a fork returned. */
  readonly starting = new Map<string, Promise<void>>();
  readonly #recover: Recovery;
  #prepared: Promise<void> | undefined;

  constructor(options: ResolvedOptions, recover: Recovery) {
    this.options = options;
    this.client = new DockerClient(parseDockerHost(options.host));
    this.layers = new LayerStore(options.stateDir);
    this.locks = new KeyedLocks(`${options.stateDir}/locks`, { provider: PROVIDER });
    this.journals = new Journals(`${options.stateDir}/locks`);
    this.#recover = recover;
  }

  error(error: unknown, operation: string, sandboxId?: string): StateboxError {
    return toStateboxError(error, {
      host: this.options.host,
      stateDir: this.options.stateDir,
      operation,
      ...(sandboxId && { sandboxId }),
    });
  }

  async call<T>(operation: string, sandboxId: string | undefined, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      throw this.error(error, operation, sandboxId);
    }
  }

  async prepare(operation: string): Promise<void> {
    this.#prepared ??= this.layers.prepare().catch((error: unknown) => {
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

  /**
   * Runs an operation that replaces or stops the container under the sandbox's lock, first repairing
   * whatever a killed fork left.
   */
  async locked<T>(sandboxId: string, operation: string, task: () => Promise<T>): Promise<T> {
    try {
      return await this.locks.run(sandboxId, async () => {
        await this.repair(sandboxId, operation);
        return await task();
      });
    } catch (error) {
      // The lock's own TransientError (another process held it past the wait) says no operation yet.
      if (TransientError.isInstance(error) && error.operation === undefined) {
        throw new TransientError(`Cannot ${operation} sandbox ${sandboxId}: ${error.message}`, {
          sandboxId,
          operation,
          cause: error,
        });
      }
      throw error;
    }
  }

  /** Under the lock: finishes or undoes a killed fork, and gives the sandbox its container name back. */
  async repair(sandboxId: string, operation: string): Promise<void> {
    if (!SANDBOX_ID.test(sandboxId)) return;
    if (await this.journals.read(sandboxId)) await this.#recover(this, sandboxId);
    const current = await this.inspectRaw(sandboxId, operation);
    if (current) return;
    // No container under its name and no journal: put back the newest one carrying its id.
    const { body: found } = await this.call(operation, sandboxId, () =>
      this.client.request<ContainerSummary[]>('GET', '/containers/json', {
        query: { all: 1, filters: JSON.stringify({ label: [`${LABEL.id}=${sandboxId}`] }) },
      }),
    );
    const orphan = found.sort((a, b) => b.Created - a.Created)[0];
    if (!orphan) return;
    await this.call(operation, sandboxId, () =>
      this.client.request('POST', `/containers/${orphan.Id}/rename`, {
        query: { name: containerName(sandboxId) },
      }),
    );
  }

  /** The container under the sandbox's name, or undefined. Never repairs: for use under the lock. */
  async inspectRaw(sandboxId: string, operation: string): Promise<ContainerJson | undefined> {
    if (!SANDBOX_ID.test(sandboxId)) return undefined;
    try {
      const { body } = await this.client.request<ContainerJson>(
        'GET',
        `/containers/${containerName(sandboxId)}/json`,
      );
      return body;
    } catch (error) {
      if (isNoSuchContainer(error)) return undefined;
      throw this.error(error, operation, sandboxId);
    }
  }

  /**
   * The sandbox's container. When it is missing from its name, or frozen where nothing but a fork
   * freezes it, this waits for the sandbox's lock (a fork in another process holds it for well under a
   * second) and repairs under it if that fork died: a lookup never renames anything a live fork is using.
   */
  async inspect(sandboxId: string, operation: string): Promise<ContainerJson> {
    if (!SANDBOX_ID.test(sandboxId))
      throw new SandboxNotFoundError(sandboxId, { provider: PROVIDER, operation });
    let container = await this.inspectRaw(sandboxId, operation);
    if (container?.State.Paused && this.locks.busy(sandboxId)) {
      // A fork in this process froze it; it is running again (or replaced) when the fork returns.
      await this.locks.idle(sandboxId);
      container = await this.inspectRaw(sandboxId, operation);
    }
    // Frozen or stopped by a fork: frozen while it seals, killed once its volume must be released.
    const unsettled = container
      ? (container.State.Paused && this.options.suspend === 'stop') ||
        ((container.State.Paused || !container.State.Running) &&
          (await this.journals.read(sandboxId)) !== undefined)
      : await this.#hasTraces(sandboxId, operation);
    if (unsettled) {
      await this.locked(sandboxId, operation, async () => undefined);
      container = await this.inspectRaw(sandboxId, operation);
    }
    if (!container) throw new SandboxNotFoundError(sandboxId, { provider: PROVIDER, operation });
    return container;
  }

  /** Whether anything of the sandbox is left when its container name is not: a fork journal, a container. */
  async #hasTraces(sandboxId: string, operation: string): Promise<boolean> {
    if ((await this.journals.read(sandboxId)) !== undefined) return true;
    const { body } = await this.call(operation, sandboxId, () =>
      this.client.request<ContainerSummary[]>('GET', '/containers/json', {
        query: { all: 1, filters: JSON.stringify({ label: [`${LABEL.id}=${sandboxId}`] }) },
      }),
    );
    return body.length > 0;
  }

  /** Turns a failed call into the right error, checking whether the sandbox is gone or merely stopped. */
  async explain(error: unknown, sandboxId: string, operation: string): Promise<StateboxError> {
    if (isNoSuchContainer(error)) {
      await this.inspect(sandboxId, operation); // throws SandboxNotFoundError when it is really gone
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
    return this.error(error, operation, sandboxId);
  }

  /** Starts a container; an egress sandbox's firewall rules are checked first. */
  async start(containerId: string, networkMode: string, sandboxId: string, operation: string): Promise<void> {
    if (isEgressNetwork(networkMode)) {
      await ensureFirewall().catch((error: unknown) => {
        throw new ProviderError(
          PROVIDER,
          `Cannot ${operation} sandbox ${sandboxId}: ${(error as Error).message}.`,
          {
            sandboxId,
            operation,
            cause: error,
          },
        );
      });
    }
    await this.call(operation, sandboxId, async () => {
      for (let attempt = 0; ; attempt++) {
        try {
          return await this.client.request('POST', `/containers/${containerId}/start`, { accept: [304] });
        } catch (error) {
          // A layer of this volume was the upper of a container that just stopped; the daemon unmounts it
          // a moment after reporting the stop, and overlay's index=on refuses a layer still mounted.
          const busy =
            error instanceof DockerApiError && /mount.*device or resource busy/i.test(error.message);
          // Under load (a load average of 7 on 2 cores here) the unmount took over 3 s once.
          if (!busy || attempt >= 150) throw error;
          await new Promise((resolve) => setTimeout(resolve, Math.min(20 + attempt * 10, 200)));
        }
      }
    });
  }

  /** After a call failed on a container that is not running: starts it if it is a pending replacement. */
  async startIfPending(error: unknown, sandboxId: string, operation: string): Promise<boolean> {
    if (!(error instanceof DockerApiError && error.status === 409 && /not running/i.test(error.message)))
      return false;
    const container = await this.inspect(sandboxId, operation);
    if (!isPendingStart(container)) return false;
    await this.start(container.Id, container.HostConfig.NetworkMode, sandboxId, operation);
    return true;
  }

  startInBackground(sandboxId: string, containerId: string, networkMode: string): void {
    const starting = this.start(containerId, networkMode, sandboxId, 'fork')
      // Left to the next operation: exec and resume start a pending replacement themselves.
      .catch(() => undefined)
      .finally(() => {
        if (this.starting.get(sandboxId) === starting) this.starting.delete(sandboxId);
      });
    this.starting.set(sandboxId, starting);
  }

  retire(containerId: string, volume: string | undefined): void {
    const removal = (async () => {
      await this.removeContainer(containerId);
      if (volume) await this.removeVolume(volume);
    })();
    this.retiring.add(removal);
    void removal.finally(() => this.retiring.delete(removal));
  }

  async volumeLayers(volume: string, sandboxId: string, operation: string): Promise<string[]> {
    const { body } = await this.call(operation, sandboxId, () =>
      this.client.request<VolumeJson>('GET', `/volumes/${volume}`),
    );
    const layers = parseLayers(body.Labels);
    if (layers.length < 2) {
      throw new ProviderError(
        PROVIDER,
        `Volume ${volume} of sandbox ${sandboxId} has no layer labels; it was not made by statebox. Destroy the sandbox.`,
        { sandboxId, operation },
      );
    }
    return layers;
  }

  volumeName(sandboxId: string, upper: string): string {
    return `statebox-${sandboxId}-${upper}`;
  }

  async createVolume(
    sandboxId: string,
    upper: string,
    lowers: readonly string[],
    operation: string,
  ): Promise<string> {
    const volume = this.volumeName(sandboxId, upper);
    await this.layers.createWorkdir(volume);
    await this.call(operation, sandboxId, () =>
      this.client.request('POST', '/volumes/create', {
        body: {
          Name: volume,
          Driver: 'local',
          DriverOpts: {
            type: 'overlay',
            device: 'overlay',
            o: this.layers.mountOptions(upper, lowers, volume),
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
  async removeVolume(volume: string, extraLayers: readonly string[] = []): Promise<void> {
    const inspected = await this.client
      .request<VolumeJson>('GET', `/volumes/${volume}`, { accept: [404] })
      .catch(() => ({ status: 0, body: undefined }));
    if (inspected.status !== 200 && inspected.status !== 404) return;
    if (inspected.status === 200) {
      // Never pull layers away from a volume a container still has.
      const users = await this.client
        .request<ContainerSummary[]>('GET', '/containers/json', {
          query: { all: 1, filters: JSON.stringify({ volume: [volume] }) },
        })
        .catch(() => undefined);
      if (!users || users.body.length > 0) return;
    }
    // Layers first, the volume last: a process killed in between leaves the volume, whose labels still
    // name the layers, for the next destroy; the other order would leave layers nothing names.
    const labels = inspected.status === 200 ? (inspected.body?.Labels ?? null) : null;
    await this.removeUnusedLayers([...parseLayers(labels), ...extraLayers], volume);
    await this.layers.removeWorkdir(volume);
    await this.client.request('DELETE', `/volumes/${volume}`, { accept: [404] }).catch(() => undefined);
  }

  /** Removes those of `layers` that no statebox volume (but `leaving`, about to go) lists. */
  async removeUnusedLayers(layers: readonly string[], leaving?: string): Promise<void> {
    const candidates = new Set(layers);
    if (candidates.size === 0) return;
    const { body } = await this.client
      .request<{ Volumes: VolumeJson[] | null }>('GET', '/volumes', {
        query: { filters: JSON.stringify({ label: [`${LABEL.provider}=${PROVIDER}`] }) },
      })
      .catch(() => ({ body: { Volumes: null } }));
    if (!body.Volumes) return;
    for (const other of body.Volumes) {
      if (other.Name === leaving) continue;
      for (const layer of parseLayers(other.Labels)) candidates.delete(layer);
    }
    for (const layer of candidates) await this.layers.removeLayer(layer);
  }

  async removeContainer(containerId: string): Promise<void> {
    await this.client
      .request('DELETE', `/containers/${containerId}`, { query: { force: 1 }, accept: [404] })
      .catch(() => undefined);
  }

  async createContainer(spec: ContainerSpec, sandboxId: string, operation: string): Promise<string> {
    try {
      const { body } = await this.client.request<{ Id: string }>('POST', '/containers/create', {
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
            ...spec.limits,
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
      throw this.error(error, operation, sandboxId);
    }
  }

  async createContainerPullingIfMissing(spec: ContainerSpec, sandboxId: string): Promise<string> {
    try {
      return await this.createContainer(spec, sandboxId, 'create');
    } catch (error) {
      if (!isNoSuchImage(error)) throw error;
    }
    let pullFailure = '';
    if (this.options.pull === 'missing') {
      try {
        await this.#pull(spec.image);
        return await this.createContainer(spec, sandboxId, 'create');
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
    const { body } = await this.client.request<Buffer>('POST', '/images/create', {
      query: { fromImage, tag },
      binary: true,
    });
    // Pull reports failures inside its progress stream, with HTTP 200.
    const text = Buffer.from(body).toString('utf8');
    const failure = /"error"\s*:\s*"([^"]*)"/.exec(text);
    if (failure) throw new DockerApiError(404, failure[1]!, '/images/create');
  }

  /** Removes what a fork left behind when its process exited before retiring the source's old container. */
  async sweepRetired(sandboxId: string, operation: string): Promise<void> {
    await Promise.all(this.retiring);
    const { body } = await this.call(operation, sandboxId, () =>
      this.client.request<ContainerSummary[]>('GET', '/containers/json', {
        query: { all: 1, filters: JSON.stringify({ label: [`${LABEL.id}=${sandboxId}`] }) },
      }),
    );
    for (const leftover of body.filter(
      (summary) => !summary.Names.includes(`/${containerName(sandboxId)}`),
    )) {
      const { body: container } = await this.client
        .request<ContainerJson>('GET', `/containers/${leftover.Id}/json`)
        .catch(() => ({ body: undefined }));
      await this.removeContainer(leftover.Id);
      const volume = container && workspaceVolume(container);
      if (volume) await this.removeVolume(volume);
    }
  }

  /** Waits for background clean-up, then closes the keep-alive connections to the daemon. */
  async close(): Promise<void> {
    await Promise.all([...this.retiring, ...this.starting.values()]);
    this.client.close();
  }
}

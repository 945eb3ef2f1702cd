import type { Sandbox } from '@daytonaio/sdk';
import { DaytonaConflictError, DaytonaNotFoundError } from '@daytonaio/sdk';
import {
  type CreateRequest,
  type ExecOutput,
  type ExecRequest,
  type ForkRequest,
  InvalidStateError,
  type ListFilter,
  ProviderError,
  type ReadFileOptions,
  type SandboxCapabilities,
  type SandboxInfo,
  SandboxNotFoundError,
  type SandboxProvider,
  type WriteFileOptions,
} from '@statebox/core';
import { capabilitiesFor } from './capabilities.js';
import { DaytonaClient } from './client.js';
import { toStateboxError } from './errors.js';
import { runExec } from './exec.js';
import { readFile, writeFile } from './files.js';
import { forkSandbox } from './fork.js';
import { DESTROYED_LABEL, isDestroyed, PARENT_LABEL, statusOf, toInfo } from './labels.js';
import { startFromAnyTier, suspendTo } from './lifecycle.js';
import type { ResolvedOptions } from './options.js';
import { shCommand, shellQuote } from './script.js';

/** statebox-v1 on Daytona: lifecycle through the API, exec and files through each sandbox's toolbox. */
export class DaytonaProvider implements SandboxProvider {
  readonly specificationVersion = 'statebox-v1' as const;
  readonly name = 'daytona';
  readonly capabilities: SandboxCapabilities;
  readonly client: DaytonaClient;
  readonly options: ResolvedOptions;

  constructor(options: ResolvedOptions) {
    this.options = options;
    this.client = new DaytonaClient(options);
    this.capabilities = capabilitiesFor(options.tier);
  }

  async create(request: CreateRequest): Promise<SandboxInfo> {
    const sandbox = await this.#call('create', undefined, () =>
      this.client.create({
        labels: { ...request.labels },
        env: { ...request.env },
        snapshot: request.image ?? this.options.snapshot,
      }),
    );
    const workdir = shellQuote(this.options.workdir);
    const made = await this.#call('create', sandbox.id, () =>
      this.client.run(
        sandbox.id,
        shCommand(
          `mkdir -p ${workdir} 2>/dev/null || sudo -n sh -c "mkdir -p ${workdir} && chown $(id -u):$(id -g) ${workdir}"`,
        ),
      ),
    );
    if (made.exitCode !== 0) {
      await this.client.delete(sandbox).catch(() => undefined);
      throw new ProviderError(
        'daytona',
        `create: cannot make the workdir ${this.options.workdir}: ${made.result}`,
        {
          sandboxId: sandbox.id,
        },
      );
    }
    return toInfo(sandbox, this.options.workdir);
  }

  async get(sandboxId: string): Promise<SandboxInfo> {
    return toInfo(await this.#sandbox(sandboxId, 'get'), this.options.workdir);
  }

  async list(filter: ListFilter = {}): Promise<SandboxInfo[]> {
    const sandboxes = await this.#call('list', undefined, () => this.client.list({ ...filter.labels }));
    return sandboxes
      .filter((sandbox) => !isDestroyed(sandbox))
      .map((sandbox) => toInfo(sandbox, this.options.workdir));
  }

  exec(sandboxId: string, request: ExecRequest): Promise<ExecOutput> {
    return runExec(this.client, sandboxId, request, (error) => this.#toolboxError(sandboxId, 'exec', error));
  }

  readFile(sandboxId: string, path: string, options: ReadFileOptions): Promise<Uint8Array> {
    return readFile(this.client, sandboxId, path, options, (error, file) =>
      this.#toolboxError(sandboxId, 'readFile', error, file),
    );
  }

  writeFile(
    sandboxId: string,
    path: string,
    data: Uint8Array,
    options: WriteFileOptions = {},
  ): Promise<void> {
    return writeFile(this.client, sandboxId, path, data, options, (error, file) =>
      this.#toolboxError(sandboxId, 'writeFile', error, file),
    );
  }

  async suspend(sandboxId: string): Promise<SandboxInfo> {
    const sandbox = await this.#sandbox(sandboxId, 'suspend');
    await this.#call('suspend', sandboxId, () => suspendTo(this.client, sandbox, this.options.tier));
    return toInfo(sandbox, this.options.workdir);
  }

  async resume(sandboxId: string): Promise<SandboxInfo> {
    const sandbox = await this.#sandbox(sandboxId, 'resume');
    await this.#call('resume', sandboxId, () => startFromAnyTier(this.client, sandbox));
    return toInfo(sandbox, this.options.workdir);
  }

  async fork(sandboxId: string, request: ForkRequest = {}): Promise<SandboxInfo> {
    const source = await this.#sandbox(sandboxId, 'fork');
    const child = await this.#call('fork', sandboxId, () =>
      forkSandbox(this.client, source, { ...request.labels }),
    );
    return toInfo(child, this.options.workdir);
  }

  /**
   * A handle this provider already holds is deleted without a `GET` first (a sandbox deleted or labelled
   * destroyed meanwhile answers the `DELETE` with 404 or 409, both handled by `#delete`); otherwise the
   * sandbox is looked up, and one already destroyed is a no-op.
   */
  async destroy(sandboxId: string): Promise<void> {
    let sandbox = this.client.cached(sandboxId);
    if (!sandbox) {
      try {
        sandbox = await this.#sandbox(sandboxId, 'destroy');
      } catch (error) {
        if (SandboxNotFoundError.isInstance(error)) return;
        throw error;
      }
    }
    const target = sandbox;
    await this.#call('destroy', sandboxId, () => this.#delete(target));
  }

  /**
   * Deletes a sandbox, then a parent that statebox destroyed while this one lived. Daytona refuses to delete
   * a parent with live forks (409): such a parent is stopped and labelled destroyed instead, reads as not
   * found from then on, and is deleted with its last child.
   */
  async #delete(sandbox: Sandbox): Promise<void> {
    try {
      await this.client.delete(sandbox);
    } catch (error) {
      if (error instanceof DaytonaNotFoundError) {
        this.client.forget(sandbox.id);
        return;
      }
      if (!(error instanceof DaytonaConflictError)) throw error;
      // The handle may be stale (destroy uses a cached one): labels and state as they are now.
      try {
        await sandbox.refreshData();
      } catch (refresh) {
        if (refresh instanceof DaytonaNotFoundError) return;
        throw refresh;
      }
      await this.client.setLabels(sandbox, {
        ...sandbox.labels,
        [DESTROYED_LABEL]: new Date().toISOString(),
      });
      if (sandbox.state === 'started') await this.client.stop(sandbox).catch(() => undefined);
      return;
    }
    const parentId = sandbox.labels?.[PARENT_LABEL];
    if (!parentId) return;
    const parent = await this.client.get(parentId).catch(() => undefined);
    if (parent?.labels?.[DESTROYED_LABEL] !== undefined) await this.#delete(parent).catch(() => undefined);
  }

  /** The sandbox, fresh; a destroyed one (deleted, being deleted, or awaiting its forks) is not found. */
  async #sandbox(sandboxId: string, operation: string): Promise<Sandbox> {
    const sandbox = await this.#call(operation, sandboxId, () => this.client.get(sandboxId));
    if (sandbox.id !== sandboxId || isDestroyed(sandbox)) {
      throw new SandboxNotFoundError(sandboxId, { operation, provider: 'daytona' });
    }
    return sandbox;
  }

  async #call<T>(operation: string, sandboxId: string | undefined, work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      throw toStateboxError(error, { operation, sandboxId });
    }
  }

  /**
   * A toolbox call failed: asks the API what became of the sandbox, so that a missing sandbox is
   * `SandboxNotFoundError`, a suspended (or restarted) one `InvalidStateError`, and only the rest is mapped
   * by kind (a missing file, a connection failure).
   */
  async #toolboxError(sandboxId: string, operation: string, error: unknown, path?: string): Promise<Error> {
    const mapped = toStateboxError(error, { operation, sandboxId, path });
    if (path && mapped.name === 'FileNotFoundError') return mapped;
    let sandbox: Sandbox;
    try {
      sandbox = await this.#sandbox(sandboxId, operation);
    } catch (lookup) {
      return SandboxNotFoundError.isInstance(lookup) ? lookup : mapped;
    }
    this.client.forget(sandboxId);
    if (statusOf(sandbox.state) !== 'running' || sandbox.state !== 'started') {
      return new InvalidStateError(
        sandboxId,
        operation,
        statusOf(sandbox.state) === 'running'
          ? `${sandbox.state}`
          : `suspended (Daytona state ${sandbox.state})`,
        'Call resume() first.',
      );
    }
    const status = (error as { statusCode?: number }).statusCode;
    if (operation === 'exec' && status === 502) {
      return new InvalidStateError(
        sandboxId,
        operation,
        'restarted while the command ran',
        'The sandbox was stopped or forked during the exec; run the command again.',
      );
    }
    return mapped;
  }
}

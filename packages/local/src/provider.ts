import type {
  CreateRequest,
  ExecOutput,
  ExecRequest,
  ForkRequest,
  ListFilter,
  ReadFileOptions,
  SandboxInfo,
  SandboxProvider,
  WriteFileOptions,
} from '@statebox/core';
import { localCapabilities } from './capabilities.js';
import { imagesUnsupportedError } from './errors.js';
import { execInSandbox } from './exec.js';
import { readSandboxFile, writeSandboxFile } from './files.js';
import { forkSandbox } from './fork.js';
import type { Home, SandboxRecord } from './home.js';
import { initIsAlive, killInit } from './init.js';
import type { ResolvedLocalOptions } from './options.js';
import { destroySandbox } from './repair.js';
import { Sandboxes } from './sandboxes.js';

/** The statebox-v1 spec on Linux namespaces and overlayfs layers (see the README, "How it works"). */
export class LocalProvider implements SandboxProvider {
  readonly specificationVersion = 'statebox-v1' as const;
  readonly name = 'local';
  readonly capabilities = localCapabilities;
  readonly home: Home;
  readonly #sandboxes: Sandboxes;

  /** Takes resolved options: `local()` and `createFromConfig()` resolve them (options.ts). */
  constructor(options: ResolvedLocalOptions) {
    this.#sandboxes = new Sandboxes(options);
    this.home = this.#sandboxes.home;
  }

  async create(request: CreateRequest): Promise<SandboxInfo> {
    if (request.image !== undefined) throw imagesUnsupportedError();
    return this.#sandboxes.create(request);
  }

  get(sandboxId: string): Promise<SandboxInfo> {
    return this.#sandboxes.get(sandboxId);
  }

  list(filter: ListFilter = {}): Promise<SandboxInfo[]> {
    return this.#sandboxes.list(filter);
  }

  exec(sandboxId: string, request: ExecRequest): Promise<ExecOutput> {
    return execInSandbox(this.#sandboxes, sandboxId, request, 'exec');
  }

  readFile(sandboxId: string, path: string, options: ReadFileOptions): Promise<Uint8Array> {
    return readSandboxFile(
      (request) => execInSandbox(this.#sandboxes, sandboxId, request, 'readFile'),
      { sandboxId, provider: this.name },
      path,
      options,
    );
  }

  writeFile(
    sandboxId: string,
    path: string,
    data: Uint8Array,
    options: WriteFileOptions = {},
  ): Promise<void> {
    return writeSandboxFile(
      (request) => execInSandbox(this.#sandboxes, sandboxId, request, 'writeFile'),
      { sandboxId, provider: this.name },
      path,
      data,
      options,
    );
  }

  /** Kills the init, which ends every process and unmounts the overlay; the files stay in the layers. */
  suspend(sandboxId: string): Promise<SandboxInfo> {
    return this.#sandboxes.locked(sandboxId, 'suspend', async (record) => {
      if (record.status === 'suspended') return this.#sandboxes.info(record);
      const suspended: SandboxRecord = { ...record, status: 'suspended' };
      delete suspended.runtime;
      if (record.runtime) {
        killInit(record.runtime);
        suspended.teardown = record.runtime;
      }
      await this.home.write(suspended);
      return this.#sandboxes.info(suspended);
    });
  }

  resume(sandboxId: string): Promise<SandboxInfo> {
    return this.#sandboxes.locked(sandboxId, 'resume', async (record) => {
      if (record.status === 'running' && initIsAlive(record.runtime)) return this.#sandboxes.info(record);
      return this.#sandboxes.info(await this.#sandboxes.start(record));
    });
  }

  fork(sandboxId: string, request: ForkRequest = {}): Promise<SandboxInfo> {
    const sandboxes = this.#sandboxes;
    return sandboxes.locked(sandboxId, 'fork', async (source) => {
      const { tools } = await sandboxes.ready();
      const host = { home: this.home, tools, start: (record: SandboxRecord) => sandboxes.start(record) };
      return sandboxes.info(await forkSandbox(host, source, request));
    });
  }

  /**
   * Works on a corrupt record too (it kills whatever init of the sandbox runs, found by scanning the
   * host's processes), and removes trees of any depth.
   */
  async destroy(sandboxId: string): Promise<void> {
    await this.#sandboxes.ready();
    await destroySandbox(this.home, sandboxId);
  }
}

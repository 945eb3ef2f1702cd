import {
  ConfigError,
  type CreateRequest,
  DEFAULT_WORKDIR,
  type ExecOutput,
  type ExecRequest,
  type ForkRequest,
  InvalidStateError,
  type ListFilter,
  type ReadFileOptions,
  type SandboxCapabilities,
  type SandboxInfo,
  SandboxNotFoundError,
  type SandboxProvider,
  type WriteFileOptions,
} from '@statebox/core';
import { withOverrides } from './capabilities.js';
import { TensorlakeClient } from './client.js';
import { PROVIDER } from './errors.js';
import { type ExecContext, runExec } from './exec.js';
import { readSandboxFile, writeSandboxFile } from './files.js';
import { forkSandbox } from './fork.js';
import { discard, type LifecycleContext, nameFor, toInfo, waitForStatus } from './lifecycle.js';
import { decodeName } from './names.js';
import type { ResolvedOptions } from './options.js';
import { SETUP } from './scripts.js';
import { GONE } from './status.js';

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** The statebox-v1 provider on Tensorlake. Stateless: any instance can act on any sandbox by id. */
export class TensorlakeProvider implements SandboxProvider {
  readonly specificationVersion = 'statebox-v1' as const;
  readonly name = PROVIDER;
  readonly capabilities: SandboxCapabilities;
  readonly #client: TensorlakeClient;
  readonly #lifecycle: LifecycleContext;
  readonly #exec: ExecContext;

  constructor(options: ResolvedOptions) {
    this.capabilities = withOverrides(options.capabilities);
    this.#client = new TensorlakeClient(options);
    this.#lifecycle = {
      client: this.#client,
      pollIntervalMs: options.pollIntervalMs,
      operationTimeoutMs: options.operationTimeoutMs,
      maxNameLength: options.maxNameLength,
    };
    this.#exec = { client: this.#client, stateDir: options.stateDir };
  }

  async create(request: CreateRequest): Promise<SandboxInfo> {
    const name = nameFor(this.#lifecycle, request.labels ?? {});
    const envFile = Object.entries(request.env ?? {})
      .map(([key, value]) => {
        if (!ENV_NAME.test(key))
          throw new ConfigError('env', `env name ${JSON.stringify(key)} is not a valid variable name.`);
        return `export ${key}='${value.replaceAll("'", `'\\''`)}'\n`;
      })
      .join('');
    const { sandboxId } = await this.#client.create(name, request.image);
    try {
      const info = await waitForStatus(this.#lifecycle, sandboxId, 'create');
      if (info.status !== 'running') {
        throw new InvalidStateError(
          sandboxId,
          'create',
          info.status,
          'Tensorlake did not start it; create another.',
        );
      }
      const setup = await this.#client.run(sandboxId, '/bin/sh', [
        '-c',
        SETUP,
        'statebox',
        this.#exec.stateDir,
        DEFAULT_WORKDIR,
        envFile,
      ]);
      if (setup.exitCode !== 0) throw new Error(`setting the sandbox up failed: ${setup.stderr}`);
      return toInfo(info);
    } catch (error) {
      await discard(this.#client, sandboxId);
      throw error;
    }
  }

  async get(sandboxId: string): Promise<SandboxInfo> {
    return toInfo(await waitForStatus(this.#lifecycle, sandboxId, 'get'));
  }

  async list(filter: ListFilter = {}): Promise<SandboxInfo[]> {
    const wanted = Object.entries(filter.labels ?? {});
    return (await this.#client.list())
      .filter((info) => !GONE.has(info.status))
      .filter((info) => {
        const labels = decodeName(info.name)?.labels;
        return labels !== undefined && wanted.every(([key, value]) => labels[key] === value);
      })
      .map(toInfo);
  }

  exec(sandboxId: string, request: ExecRequest): Promise<ExecOutput> {
    return runExec(this.#exec, sandboxId, request);
  }

  readFile(sandboxId: string, path: string, options: ReadFileOptions): Promise<Uint8Array> {
    return readSandboxFile(this.#exec, sandboxId, path, options);
  }

  writeFile(
    sandboxId: string,
    path: string,
    data: Uint8Array,
    options: WriteFileOptions = {},
  ): Promise<void> {
    return writeSandboxFile(this.#exec, sandboxId, path, data, options);
  }

  async suspend(sandboxId: string): Promise<SandboxInfo> {
    const before = await waitForStatus(this.#lifecycle, sandboxId, 'suspend');
    if (before.status === 'suspended') return toInfo(before);
    await this.#client.suspend(sandboxId);
    return toInfo(
      await waitForStatus(this.#lifecycle, sandboxId, 'suspend', (status) => status === 'suspended'),
    );
  }

  async resume(sandboxId: string): Promise<SandboxInfo> {
    const before = await waitForStatus(this.#lifecycle, sandboxId, 'resume');
    if (before.status === 'running') return toInfo(before);
    await this.#client.resume(sandboxId);
    // Running is not enough: the data plane needs the sandbox's URL back (research A.5).
    return toInfo(
      await waitForStatus(this.#lifecycle, sandboxId, 'resume', (status) => status === 'running'),
    );
  }

  async fork(sandboxId: string, request: ForkRequest = {}): Promise<SandboxInfo> {
    const [child] = await forkSandbox(this.#lifecycle, sandboxId, request.labels ?? {});
    return child!;
  }

  async destroy(sandboxId: string): Promise<void> {
    try {
      await this.#client.delete(sandboxId);
    } catch (error) {
      if (!SandboxNotFoundError.isInstance(error)) throw error;
    }
  }
}

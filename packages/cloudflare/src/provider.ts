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
import { capabilities } from './capabilities.js';
import { WorkerClient } from './client.js';
import { PROVIDER } from './errors.js';
import { runExec } from './exec.js';
import { readFile, writeFile } from './files.js';

export type CloudflareProviderSettings = {
  url: string;
  token: string;
  requestTimeoutMs: number;
  lifecycleTimeoutMs: number;
};

/**
 * The statebox-v1 provider for Cloudflare: every call is one HTTP request to the statebox Worker, which
 * drives `@cloudflare/sandbox` and keeps the registry. Nothing is kept in this process.
 */
export class CloudflareProvider implements SandboxProvider {
  readonly specificationVersion = 'statebox-v1' as const;
  readonly name = PROVIDER;
  readonly capabilities = capabilities;
  readonly client: WorkerClient;

  constructor(private readonly settings: CloudflareProviderSettings) {
    this.client = new WorkerClient(settings.url, settings.token);
  }

  private lifecycle<T>(
    path: string,
    operation: string,
    sandboxId?: string,
    method = 'POST',
    body?: unknown,
  ): Promise<T> {
    return this.client.json<T>(path, {
      method,
      body: body ?? {},
      timeoutMs: this.settings.lifecycleTimeoutMs,
      context: { sandboxId, operation },
    });
  }

  create(request: CreateRequest): Promise<SandboxInfo> {
    return this.lifecycle('/v1/sandboxes', 'create', undefined, 'POST', {
      labels: request.labels ?? {},
      env: request.env ?? {},
      ...(request.image !== undefined ? { image: request.image } : {}),
    });
  }

  get(sandboxId: string): Promise<SandboxInfo> {
    return this.client.json(`/v1/sandboxes/${encodeURIComponent(sandboxId)}`, {
      timeoutMs: this.settings.requestTimeoutMs,
      context: { sandboxId, operation: 'get' },
    });
  }

  async list(filter?: ListFilter): Promise<SandboxInfo[]> {
    const query = new URLSearchParams({ labels: JSON.stringify(filter?.labels ?? {}) });
    const answer = await this.client.json<{ sandboxes: SandboxInfo[] }>(`/v1/sandboxes?${query}`, {
      timeoutMs: this.settings.requestTimeoutMs,
      context: { operation: 'list' },
    });
    return answer.sandboxes;
  }

  exec(sandboxId: string, request: ExecRequest): Promise<ExecOutput> {
    return runExec(this.client, sandboxId, request, this.settings.requestTimeoutMs);
  }

  readFile(sandboxId: string, path: string, options: ReadFileOptions): Promise<Uint8Array> {
    return readFile(this.client, sandboxId, path, options, this.settings.lifecycleTimeoutMs);
  }

  writeFile(
    sandboxId: string,
    path: string,
    data: Uint8Array,
    options: WriteFileOptions = {},
  ): Promise<void> {
    return writeFile(this.client, sandboxId, path, data, options, this.settings.lifecycleTimeoutMs);
  }

  suspend(sandboxId: string): Promise<SandboxInfo> {
    return this.lifecycle(
      `/v1/sandboxes/${encodeURIComponent(sandboxId)}/suspend`,
      'suspend',
      sandboxId,
    ).then((info) => strip(info as SandboxInfo));
  }

  resume(sandboxId: string): Promise<SandboxInfo> {
    return this.lifecycle(`/v1/sandboxes/${encodeURIComponent(sandboxId)}/resume`, 'resume', sandboxId).then(
      (info) => strip(info as SandboxInfo),
    );
  }

  fork(sandboxId: string, request: ForkRequest = {}): Promise<SandboxInfo> {
    return this.lifecycle(`/v1/sandboxes/${encodeURIComponent(sandboxId)}/fork`, 'fork', sandboxId, 'POST', {
      labels: request.labels ?? {},
    });
  }

  async destroy(sandboxId: string): Promise<void> {
    await this.client.send(`/v1/sandboxes/${encodeURIComponent(sandboxId)}`, {
      method: 'DELETE',
      timeoutMs: this.settings.lifecycleTimeoutMs,
      context: { sandboxId, operation: 'destroy' },
    });
  }
}

/** Suspend and resume answers also carry `backupBytes` (the benchmark reads it); the spec's info does not. */
function strip(info: SandboxInfo & { backupBytes?: number }): SandboxInfo {
  const { backupBytes: _backupBytes, ...rest } = info;
  return rest;
}

import type { Sandbox as TensorlakeSandbox } from 'tensorlake';
import { SandboxClient, type SandboxInfo as TensorlakeInfo } from 'tensorlake';
import { type ErrorContext, toStateboxError } from './errors.js';
import type { ResolvedOptions } from './options.js';

export type { TensorlakeInfo };
export type RunResult = { exitCode: number; stdout: string; stderr: string };
export type CopyResult = { sandboxId: string; status: string; reason?: string | undefined };

/** Handles kept per sandbox for data-plane calls; a few hundred is plenty and bounds memory. */
const MAX_HANDLES = 256;

/**
 * The only module that talks to Tensorlake: the lifecycle client of the `tensorlake` SDK and one proxy
 * handle per sandbox for the data plane. Every failure leaves here as a statebox error (errors.ts),
 * except the data plane's raw answers that callers interpret (a missing file's 404).
 *
 * The lifecycle client is built with the SDK's internal flag, as `Sandbox.create()` builds it, so it
 * does not log a deprecation warning; `Sandbox.create()` itself is not used because it polls every
 * 500 ms, a floor under every create.
 */
export class TensorlakeClient {
  readonly #options: ResolvedOptions;
  readonly #lifecycle: SandboxClient;
  readonly #handles = new Map<string, TensorlakeSandbox>();

  constructor(options: ResolvedOptions) {
    this.#options = options;
    this.#lifecycle = new SandboxClient(
      {
        apiUrl: options.apiUrl,
        apiKey: options.apiKey,
        namespace: options.namespace,
        requestTimeout: options.requestTimeoutSecs,
      },
      true,
    );
  }

  get apiUrl(): string {
    return this.#options.apiUrl;
  }

  async create(name: string, image: string | undefined): Promise<{ sandboxId: string }> {
    const options = this.#options;
    return this.#call({ operation: 'create' }, () =>
      this.#lifecycle.create({
        name,
        cpus: options.cpus,
        memoryMb: options.memoryMb,
        ...((image ?? options.image) !== undefined && { image: image ?? options.image }),
        ...(options.diskMb !== undefined && { diskMb: options.diskMb }),
        ...(options.timeoutSecs !== undefined && { timeoutSecs: options.timeoutSecs }),
      }),
    );
  }

  get(sandboxId: string, operation = 'get'): Promise<TensorlakeInfo> {
    return this.#call({ sandboxId, operation }, () => this.#lifecycle.get(sandboxId));
  }

  list(): Promise<TensorlakeInfo[]> {
    return this.#call({ operation: 'list' }, () => this.#lifecycle.list());
  }

  async delete(sandboxId: string): Promise<void> {
    this.#handles.delete(sandboxId);
    await this.#call({ sandboxId, operation: 'destroy' }, () => this.#lifecycle.delete(sandboxId));
  }

  rename(sandboxId: string, name: string, operation: string): Promise<TensorlakeInfo> {
    return this.#call({ sandboxId, operation }, () => this.#lifecycle.update(sandboxId, { name }));
  }

  /** Asks for a suspend and returns; the caller polls (`wait: false`, so the SDK's 1 s poll is not used). */
  async suspend(sandboxId: string): Promise<void> {
    this.#handles.delete(sandboxId);
    await this.#call({ sandboxId, operation: 'suspend' }, () =>
      this.#lifecycle.suspend(sandboxId, { wait: false }),
    );
  }

  async resume(sandboxId: string): Promise<void> {
    // A resumed sandbox may be routed elsewhere: the next data-plane call resolves its URL afresh.
    this.#handles.delete(sandboxId);
    await this.#call({ sandboxId, operation: 'resume' }, () =>
      this.#lifecycle.resume(sandboxId, { wait: false }),
    );
  }

  async copy(sandboxId: string, times: number): Promise<CopyResult[]> {
    const response = await this.#call({ sandboxId, operation: 'fork' }, () =>
      this.#lifecycle.copy(sandboxId, { times }),
    );
    return response.sandboxes.map((copy) => ({
      sandboxId: copy.sandboxId,
      status: copy.status,
      reason: copy.reason,
    }));
  }

  /**
   * Runs a command through the daemon's `processes/run` (one streaming request). Failures come back
   * raw (SDK errors): exec decides what a broken stream means from the sandbox's status.
   */
  run(sandboxId: string, command: string, args: string[], timeoutSecs?: number): Promise<RunResult> {
    return this.#handle(sandboxId).run(command, {
      args,
      ...(timeoutSecs !== undefined && { timeout: timeoutSecs }),
    });
  }

  /** `GET /api/v1/files`: raw bytes; failures raw. */
  readFile(sandboxId: string, path: string): Promise<Uint8Array> {
    return this.#handle(sandboxId).readFile(path);
  }

  /** `PUT /api/v1/files`: raw bytes; failures raw. */
  writeFile(sandboxId: string, path: string, data: Uint8Array): Promise<void> {
    return this.#handle(sandboxId).writeFile(path, data);
  }

  context(operation: string, sandboxId?: string): ErrorContext {
    return { operation, sandboxId, apiUrl: this.#options.apiUrl };
  }

  /** The SDK's lazy handle: its first call resolves `sandbox_url` with a GET, then it is reused. */
  #handle(sandboxId: string): TensorlakeSandbox {
    let handle = this.#handles.get(sandboxId);
    if (!handle) {
      handle = this.#lifecycle.connect(
        sandboxId,
        undefined,
        undefined,
        this.#options.requestTimeoutSecs,
        // Passed explicitly, so that TENSORLAKE_SANDBOX_PROXY_URL in the environment cannot redirect the data plane.
        undefined,
      );
      if (this.#handles.size >= MAX_HANDLES) {
        const oldest = this.#handles.keys().next().value as string;
        this.#handles.delete(oldest);
      }
      this.#handles.set(sandboxId, handle);
    }
    return handle;
  }

  async #call<T>(context: { operation: string; sandboxId?: string }, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      throw toStateboxError(error, this.context(context.operation, context.sandboxId));
    }
  }
}

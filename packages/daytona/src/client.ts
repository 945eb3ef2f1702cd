import { Daytona, type Sandbox } from '@daytonaio/sdk';
import type { ResolvedOptions } from './options.js';

/** Daytona states in which a sandbox is on its way somewhere; a caller waits them out. */
export const TRANSITIONAL_STATES = new Set([
  'creating',
  'restoring',
  'destroying',
  'starting',
  'stopping',
  'pending_build',
  'building_snapshot',
  'pulling_snapshot',
  'archiving',
  'resizing',
  'snapshotting',
  'forking',
  'pausing',
  'resuming',
]);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export type RunResult = { exitCode: number; result: string };

/**
 * The one module that talks to Daytona, through the unchanged `@daytonaio/sdk`. It keeps the SDK's
 * `Sandbox` objects by id only as a cache of each sandbox's toolbox URL (any process can rebuild it with
 * one `GET /sandbox/{id}`); sandbox state is always read fresh.
 */
export class DaytonaClient {
  readonly sdk: Daytona;
  readonly options: ResolvedOptions;
  readonly #handles = new Map<string, Sandbox>();

  constructor(options: ResolvedOptions) {
    this.options = options;
    // apiKey, apiUrl and target are all passed, so the SDK never reads a `.env` in the working directory.
    this.sdk = new Daytona({
      apiKey: options.apiKey,
      apiUrl: options.apiUrl,
      target: options.target,
      useDeprecatedPolling: options.polling,
      otelEnabled: false,
    });
  }

  get timeout(): number {
    return this.options.lifecycleTimeoutSeconds;
  }

  async create(request: {
    labels: Record<string, string>;
    env: Record<string, string>;
    snapshot?: string | undefined;
  }): Promise<Sandbox> {
    const sandbox = await this.sdk.create(
      {
        labels: request.labels,
        envVars: request.env,
        ...(request.snapshot ? { snapshot: request.snapshot } : {}),
        autoStopInterval: this.options.autoStopAfter,
        ...(this.options.archiveAfter !== undefined
          ? { autoArchiveInterval: this.options.archiveAfter }
          : {}),
      },
      { timeout: this.timeout },
    );
    this.#handles.set(sandbox.id, sandbox);
    return sandbox;
  }

  /** The sandbox as it is now (`GET /sandbox/{id}`). */
  async get(sandboxId: string): Promise<Sandbox> {
    const sandbox = await this.sdk.get(sandboxId);
    this.#handles.set(sandbox.id, sandbox);
    return sandbox;
  }

  /** A handle for toolbox calls: cached, else fetched. Its `state` may be stale. */
  async handle(sandboxId: string): Promise<Sandbox> {
    return this.#handles.get(sandboxId) ?? (await this.get(sandboxId));
  }

  /** The handle this client already holds (from create, get or fork), if any; its state and labels may be stale. */
  cached(sandboxId: string): Sandbox | undefined {
    return this.#handles.get(sandboxId);
  }

  forget(sandboxId: string): void {
    this.#handles.delete(sandboxId);
  }

  async list(labels: Record<string, string>): Promise<Sandbox[]> {
    const out: Sandbox[] = [];
    for await (const sandbox of this.sdk.list({ labels, limit: 200 })) out.push(sandbox);
    return out;
  }

  /** `POST {toolbox}/process/execute`: one shell command, stdout and stderr merged into `result`. */
  async run(sandboxId: string, command: string, timeoutSeconds = 0): Promise<RunResult> {
    const sandbox = await this.handle(sandboxId);
    const response = await sandbox.process.executeCommand(command, undefined, undefined, timeoutSeconds);
    return { exitCode: response.exitCode, result: response.result };
  }

  async upload(sandboxId: string, data: Uint8Array, path: string): Promise<void> {
    const sandbox = await this.handle(sandboxId);
    await sandbox.fs.uploadFile(Buffer.from(data.buffer, data.byteOffset, data.byteLength), path);
  }

  async download(sandboxId: string, path: string): Promise<Uint8Array> {
    const sandbox = await this.handle(sandboxId);
    return new Uint8Array(await sandbox.fs.downloadFile(path));
  }

  async start(sandbox: Sandbox): Promise<void> {
    await sandbox.start(this.timeout);
  }

  async stop(sandbox: Sandbox): Promise<void> {
    await sandbox.stop(this.timeout);
  }

  async pause(sandbox: Sandbox): Promise<void> {
    await sandbox.pause(this.timeout);
  }

  /** `archive()` does not wait in SDK 0.218, so this polls until the sandbox is `archived`. */
  async archive(sandbox: Sandbox): Promise<void> {
    await sandbox.archive();
    await this.settle(sandbox);
  }

  async fork(sandbox: Sandbox): Promise<Sandbox> {
    const child = await sandbox.fork({}, this.timeout);
    this.#handles.set(child.id, child);
    return child;
  }

  async setLabels(sandbox: Sandbox, labels: Record<string, string>): Promise<void> {
    await sandbox.setLabels(labels);
  }

  async delete(sandbox: Sandbox): Promise<void> {
    await sandbox.delete(this.timeout);
    this.#handles.delete(sandbox.id);
  }

  /** Refreshes until the sandbox leaves every transitional state (100 ms, then up to 1 s, like the SDK). */
  async settle(sandbox: Sandbox): Promise<void> {
    const deadline = Date.now() + this.timeout * 1000;
    let pause = 100;
    await sandbox.refreshData();
    while (sandbox.state && TRANSITIONAL_STATES.has(sandbox.state)) {
      if (Date.now() > deadline) {
        throw new Error(`sandbox ${sandbox.id} stayed ${sandbox.state} for ${this.timeout} s`);
      }
      await sleep(pause);
      pause = Math.min(pause * 1.5, 1000);
      await sandbox.refreshData();
    }
  }
}

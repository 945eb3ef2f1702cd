import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SandboxCapabilities, SandboxProvider } from '@statebox/core';
import { BackingSandboxes, createEmulatorServer, type EmulatorServer } from '@statebox/emulator-kit';
import { local } from '@statebox/local';
import { errorResponse } from './errors.js';
import { registerRoutes } from './routes/index.js';
import { type SandboxRecord, SandboxTable } from './state.js';

export type TensorlakeEmulatorOptions = {
  /** The bearer token the SDK must send (`TENSORLAKE_API_KEY`). Default: a fresh `tl_emulator_…` key. */
  apiKey?: string;
  /** The statebox provider whose sandboxes stand in for Tensorlake's VMs. Default: `local()` in a temp home. */
  provider?: SandboxProvider;
  /**
   * How long each transitional status (`pending`, `suspending`, resuming) lasts at least, in ms, so that
   * pollers see it as they would on the service. Default 25.
   */
  transitionMs?: number;
  /** Longest sandbox name accepted. Default 253 (Tensorlake documents no limit: UNCONFIRMED). */
  maxNameLength?: number;
  /** Port on 127.0.0.1; 0 (default) picks a free one. */
  port?: number;
};

/** Extra fields of each request record: the sandbox a data-plane request was routed to by its Host. */
export type RequestFields = { host: string | null };

/**
 * What this emulator cannot reproduce, as statebox capabilities: the local provider's fork copies files
 * but not running processes, and restarts the source's processes. A provider pointed at the emulator
 * declares these instead of Tensorlake's (see `@statebox/tensorlake/testing`).
 */
export const EMULATOR_FIDELITY: Partial<SandboxCapabilities> = {
  fork: 'filesystem',
  forkSource: 'restarted',
};

/**
 * A loopback Tensorlake: the lifecycle API under `/v1/namespaces/{namespace}/sandboxes…` and the
 * in-sandbox daemon's API (`/api/v1/processes/run`, `/api/v1/files`) routed by `Host: {id}.local`, as
 * tensorlake@0.5.89 sends them to a localhost URL. Sandboxes are real statebox sandboxes.
 */
export class TensorlakeEmulator {
  readonly apiKey: string;
  readonly namespace = 'default';
  readonly transitionMs: number;
  readonly table: SandboxTable;
  readonly server: EmulatorServer<object, RequestFields>;
  readonly fidelity = EMULATOR_FIDELITY;
  #backing: BackingSandboxes | undefined;
  #home: string | undefined;
  readonly #options: TensorlakeEmulatorOptions;
  #pid = 100;

  constructor(options: TensorlakeEmulatorOptions = {}) {
    this.#options = options;
    this.apiKey = options.apiKey ?? `tl_emulator_${Math.random().toString(36).slice(2, 14)}`;
    this.transitionMs = options.transitionMs ?? 25;
    this.table = new SandboxTable(options.maxNameLength ?? 253);
    this.server = createEmulatorServer<object, RequestFields>({
      name: 'tensorlake',
      errorResponse,
      describeRequest: (c) => ({ host: c.req.header('host') ?? null }),
    });
    registerRoutes(this);
  }

  /** `http://127.0.0.1:<port>`: pass it as `apiUrl` (the SDK keeps loopback URLs, see the README). */
  get url(): string {
    return this.server.url;
  }

  get backing(): BackingSandboxes {
    if (!this.#backing) throw new Error('tensorlake emulator: not started; await start() first');
    return this.#backing;
  }

  nextPid(): number {
    this.#pid += 1;
    return this.#pid;
  }

  async start(): Promise<string> {
    let provider = this.#options.provider;
    if (!provider) {
      this.#home = await mkdtemp(join(tmpdir(), 'statebox-tensorlake-emulator-'));
      provider = local({ home: this.#home });
    }
    this.#backing = new BackingSandboxes({ emulator: 'tensorlake', provider });
    return this.server.listen({ port: this.#options.port ?? 0 });
  }

  /** Waits out `transitionMs`, so a poller sees the transitional status. */
  pause(): Promise<void> {
    return new Promise((resolve) => setTimeout(resolve, this.transitionMs));
  }

  /** Runs `step` after every earlier transition of the sandbox (suspend, resume, copy, delete). */
  serialize(record: SandboxRecord, step: () => Promise<void>): Promise<void> {
    const next = record.transition.then(step, step);
    record.transition = next.catch(() => undefined);
    return next;
  }

  /** Cuts every open data-plane stream of the sandbox, as a VM snapshot or a stop does. */
  cutStreams(record: SandboxRecord): void {
    for (const stream of [...record.streams]) stream.drop();
    record.streams.clear();
  }

  async close(): Promise<void> {
    await this.server.close();
    for (const record of this.table.all()) this.cutStreams(record);
    try {
      await this.#backing?.close();
    } finally {
      // The local provider may still be releasing lock files as the last sandbox goes: retry.
      if (this.#home) await rm(this.#home, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
    }
  }
}

/** Starts an emulator on 127.0.0.1 and resolves once it listens. */
export async function startTensorlakeEmulator(
  options: TensorlakeEmulatorOptions = {},
): Promise<TensorlakeEmulator> {
  const emulator = new TensorlakeEmulator(options);
  await emulator.start();
  return emulator;
}

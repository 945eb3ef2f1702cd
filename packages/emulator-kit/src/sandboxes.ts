import { randomUUID } from 'node:crypto';
import {
  type CreateOptions,
  createStatebox,
  type Sandbox,
  SandboxNotFoundError,
  type SandboxProvider,
  type Statebox,
} from '@statebox/core';

/** The label every backing sandbox carries: the emulator's name. */
export const EMULATOR_LABEL = 'statebox.emulator';
/** The label carrying the vendor's id for the sandbox (`sandbox-7f3a`, a Daytona workspace id). */
export const VENDOR_ID_LABEL = 'statebox.emulator.vendor-id';
/** The label naming one running emulator, so `close()` never touches another emulator's sandboxes. */
export const INSTANCE_LABEL = 'statebox.emulator.instance';

export interface BackingSandboxesOptions {
  /** Names the emulator in labels and messages. */
  emulator: string;
  /** The statebox provider whose sandboxes stand in for the vendor's: `local()`, `docker()`. */
  provider: SandboxProvider;
  /** Create options applied to every sandbox (an image, env); per-call options win. */
  defaults?: CreateOptions;
}

/**
 * The vendor's sandboxes, backed by real statebox sandboxes: a command the SDK runs through the emulator
 * really runs, a file it writes is really there, and suspend or fork really happen on the provider.
 * Vendor ids map to statebox sandboxes; the emulator chooses the ids (in the vendor's format) and keeps
 * its own record of vendor-only state beside them.
 *
 * ```ts
 * const sandboxes = new BackingSandboxes({ emulator: 'daytona', provider: local() });
 * server.post('/sandbox', async (c) => {
 *   const id = newVendorId();
 *   await sandboxes.create(id, { env: body.env });
 *   return c.json({ id, state: 'started' });
 * });
 * server.post('/toolbox/:id/process/execute', async (c) => {
 *   const result = await sandboxes.require(c.req.param('id'), notFound).exec(body.command);
 *   return c.json({ exitCode: result.exitCode, result: result.stdout });
 * });
 * ```
 */
export class BackingSandboxes {
  readonly #options: BackingSandboxesOptions;
  readonly #statebox: Statebox;
  readonly #sandboxes = new Map<string, Sandbox>();
  /** Labels every sandbox of this instance carries. */
  readonly labels: Readonly<Record<string, string>>;

  constructor(options: BackingSandboxesOptions) {
    this.#options = options;
    this.#statebox = createStatebox({ provider: options.provider });
    this.labels = { [EMULATOR_LABEL]: options.emulator, [INSTANCE_LABEL]: randomUUID() };
  }

  /** Vendor ids of every live backing sandbox, oldest first. */
  get ids(): string[] {
    return [...this.#sandboxes.keys()];
  }

  /** Create the sandbox behind `vendorId`. Labels name the emulator and the vendor id. */
  async create(vendorId: string, options: CreateOptions = {}): Promise<Sandbox> {
    if (this.#sandboxes.has(vendorId)) {
      throw new Error(`${this.#options.emulator} emulator: sandbox ${vendorId} already exists`);
    }
    const defaults = this.#options.defaults ?? {};
    const sandbox = await this.#statebox.create({
      ...defaults,
      ...options,
      env: { ...defaults.env, ...options.env },
      labels: {
        ...defaults.labels,
        ...options.labels,
        ...this.labels,
        [VENDOR_ID_LABEL]: vendorId,
      },
    });
    this.#sandboxes.set(vendorId, sandbox);
    return sandbox;
  }

  /** Fork the sandbox behind `sourceId` into a new one behind `childId` (labelled like `create`'s). */
  async fork(sourceId: string, childId: string): Promise<Sandbox> {
    const source = this.#sandboxes.get(sourceId);
    if (!source) throw new Error(`${this.#options.emulator} emulator: no sandbox ${sourceId} to fork`);
    if (this.#sandboxes.has(childId)) {
      throw new Error(`${this.#options.emulator} emulator: sandbox ${childId} already exists`);
    }
    const child = await source.fork({ labels: { ...this.labels, [VENDOR_ID_LABEL]: childId } });
    this.#sandboxes.set(childId, child);
    return child;
  }

  /** The sandbox behind `vendorId`, or `undefined`. */
  get(vendorId: string): Sandbox | undefined {
    return this.#sandboxes.get(vendorId);
  }

  /** The sandbox behind `vendorId`; otherwise throws what `notFound` makes (the vendor's 404). */
  require(vendorId: string, notFound: (vendorId: string) => Error): Sandbox {
    const sandbox = this.#sandboxes.get(vendorId);
    if (!sandbox) throw notFound(vendorId);
    return sandbox;
  }

  /** Destroy the sandbox behind `vendorId` (nothing when there is none). */
  async destroy(vendorId: string): Promise<void> {
    const sandbox = this.#sandboxes.get(vendorId);
    if (!sandbox) return;
    this.#sandboxes.delete(vendorId);
    await sandbox.destroy();
  }

  /**
   * Destroy every sandbox this instance created (tracked, and found by its instance label, so one whose
   * create raced `close` is not leaked). A sandbox already gone is not an error. Call it from the emulator's `close()`.
   */
  async close(): Promise<void> {
    const tracked = [...this.#sandboxes.values()];
    this.#sandboxes.clear();
    const labelled = await this.#statebox.list({ labels: { ...this.labels } });
    const byId = new Map([...tracked, ...labelled].map((sandbox) => [sandbox.id, sandbox]));
    const results = await Promise.allSettled([...byId.values()].map((sandbox) => sandbox.destroy()));
    const failed = results.filter(
      (result) => result.status === 'rejected' && !SandboxNotFoundError.isInstance(result.reason),
    );
    if (failed.length > 0) {
      throw new AggregateError(
        failed.map((result) => (result as PromiseRejectedResult).reason),
        `${this.#options.emulator} emulator: ${failed.length} backing sandbox(es) could not be destroyed`,
      );
    }
  }
}

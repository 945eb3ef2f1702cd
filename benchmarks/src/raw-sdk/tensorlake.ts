import { randomBytes } from 'node:crypto';
import { SandboxClient } from 'tensorlake';
import { time } from '../stats.ts';
import type { RawSdk } from './types.ts';

export const TENSORLAKE_SDK = 'tensorlake 0.5.89 SDK';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The raw `tensorlake` SDK, as the adapter's benchmarks call it: `SandboxClient` against the same
 * endpoint as the adapter (the loopback emulator, or the service), state polled at `pollIntervalMs`
 * (the adapter's own interval, so neither side gains from polling less often).
 */
export class TensorlakeRaw {
  readonly client: SandboxClient;
  /** Every sandbox this side made and has not deleted, for the cleanup after a failure. */
  readonly made = new Set<string>();

  readonly pollIntervalMs: number;

  constructor(reach: { apiUrl?: string | undefined; apiKey?: string | undefined }, pollIntervalMs = 20) {
    this.pollIntervalMs = pollIntervalMs;
    this.client = new SandboxClient({ apiUrl: reach.apiUrl, apiKey: reach.apiKey }, true);
  }

  name(): string {
    return `bench-${randomBytes(6).toString('hex')}`;
  }

  async waitFor(id: string, status: string): Promise<void> {
    for (;;) {
      const info = await this.client.get(id);
      if (info.status === status) return;
      await sleep(this.pollIntervalMs);
    }
  }

  /** A new sandbox, once it is running. */
  async create(): Promise<string> {
    const { sandboxId } = await this.client.create({ name: this.name() });
    this.made.add(sandboxId);
    await this.waitFor(sandboxId, 'running');
    return sandboxId;
  }

  connect(id: string) {
    return this.client.connect(id, undefined, undefined, undefined, undefined);
  }

  async delete(id: string): Promise<void> {
    await this.client.delete(id);
    this.made.delete(id);
  }

  /** suspend without the SDK's 1 s wait, polled at the adapter's interval. */
  async suspend(id: string): Promise<void> {
    await this.client.suspend(id, { wait: false });
    await this.waitFor(id, 'suspended');
  }

  async resume(id: string): Promise<void> {
    await this.client.resume(id, { wait: false });
    await this.waitFor(id, 'running');
  }

  /** `copy` of a running sandbox, then naming the copy (the adapter names its forks). */
  async fork(id: string): Promise<string> {
    const copies = await this.client.copy(id, { times: 1 });
    const child = copies.sandboxes[0]!.sandboxId;
    this.made.add(child);
    await this.client.update(child, { name: this.name() });
    return child;
  }

  async cleanup(): Promise<void> {
    for (const id of [...this.made]) await this.delete(id).catch(() => undefined);
  }
}

/** The raw Tensorlake side of the comparison. */
export function tensorlakeRawSdk(reach: { apiUrl?: string; apiKey?: string }, pollIntervalMs = 20): RawSdk {
  const raw = new TensorlakeRaw(reach, pollIntervalMs);
  const run = async (id: string, command: string) => {
    const result = await raw.connect(id).run('sh', { args: ['-c', command] });
    if (result.exitCode !== 0)
      throw new Error(
        `raw tensorlake: \`${command.slice(0, 80)}\` exited ${result.exitCode}: ${result.stderr}`,
      );
  };
  return {
    sdk: TENSORLAKE_SDK,
    timedAt: `in this process, around the SDK call (state polled every ${pollIntervalMs} ms, as the adapter does)`,
    missing: {},
    open: async () => ({ id: await raw.create(), shared: false }),
    close: async (id) => {
      await raw.delete(id).catch(() => undefined);
      await raw.cleanup();
    },
    run,
    upload: async (id, path, data) => {
      await raw.connect(id).writeFile(path, data);
    },
    measure: {
      async create() {
        let id = '';
        const ms = await time(async () => {
          id = await raw.create();
        });
        await raw.delete(id);
        return ms;
      },
      exec: (id) =>
        time(async () => {
          // Through a shell, as the adapter runs a command string.
          const result = await raw.connect(id).run('sh', { args: ['-c', 'true'] });
          if (result.exitCode !== 0) throw new Error(`raw tensorlake: true exited ${result.exitCode}`);
        }),
      write_1mib: (id, path, data) => time(() => raw.connect(id).writeFile(path, data)),
      read_1mib: (id, path) => time(() => raw.connect(id).readFile(path)),
      suspend: (id) => time(() => raw.suspend(id)),
      resume: (id) => time(() => raw.resume(id)),
      async fork(id) {
        let child = '';
        const ms = await time(async () => {
          child = await raw.fork(id);
        });
        return { ms, child };
      },
      destroy: (child) => time(() => raw.delete(child!)),
    },
  };
}

import { Daytona, type Sandbox } from '@daytonaio/sdk';
import { shellQuote } from '@statebox/adapter-kit';
import type { SuspendTier } from '@statebox/daytona';
import { time } from '../stats.ts';
import type { RawSdk } from './types.ts';

export const DAYTONA_SDK = '@daytonaio/sdk 0.218.0';

/** How the raw SDK is pointed at the same endpoint as the adapter (the adapter's resolved options). */
export type DaytonaReach = { apiKey?: string; apiUrl?: string; target?: string; polling?: boolean };

export function daytonaClient(reach: DaytonaReach): Daytona {
  return new Daytona({
    apiKey: reach.apiKey,
    apiUrl: reach.apiUrl,
    target: reach.target,
    useDeprecatedPolling: reach.polling,
    otelEnabled: false,
  });
}

async function settle(sandbox: Sandbox, target: string): Promise<void> {
  await sandbox.refreshData();
  while (sandbox.state !== target) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    await sandbox.refreshData();
  }
}

/** The raw SDK's way into each of the adapter's suspend tiers and back out. */
export const rawTier: Record<
  SuspendTier,
  { suspend: (s: Sandbox) => Promise<void>; resume: (s: Sandbox) => Promise<void> }
> = {
  stop: { suspend: (s) => s.stop(120), resume: (s) => s.start(120) },
  pause: { suspend: (s) => s.pause(120), resume: (s) => s.start(120) },
  archive: {
    suspend: async (s) => {
      await s.stop(120);
      await s.archive();
      await settle(s, 'archived');
    },
    resume: (s) => s.start(120),
  },
};

/** A sandbox as the raw SDK makes one: no auto-stop, the adapter's labels shape. */
export function rawCreate(sdk: Daytona, labels: Record<string, string> = { bench: 'daytona' }) {
  return sdk.create({ labels, autoStopInterval: 0 }, { timeout: 120 });
}

/** The raw Daytona side of the comparison, using the adapter's suspend tier. */
export function daytonaRawSdk(reach: DaytonaReach, tier: SuspendTier = 'stop'): RawSdk {
  const sdk = daytonaClient(reach);
  const boxes = new Map<string, Sandbox>();
  const sandboxOf = (id: string) => {
    const sandbox = boxes.get(id);
    if (!sandbox) throw new Error(`raw daytona: no sandbox ${id} made in this run`);
    return sandbox;
  };
  const make = async () => {
    const sandbox = await rawCreate(sdk);
    boxes.set(sandbox.id, sandbox);
    return sandbox.id;
  };
  const remove = async (id: string) => {
    await sandboxOf(id).delete(120);
    boxes.delete(id);
  };
  return {
    sdk: DAYTONA_SDK,
    timedAt: `in this process, around the SDK call (suspend tier ${tier}: ${tier === 'archive' ? 'stop + archive' : tier} / start)`,
    missing: {},
    open: async () => ({ id: await make(), shared: false }),
    async close() {
      for (const id of [...boxes.keys()]) await remove(id).catch(() => undefined);
    },
    async run(id, command) {
      const result = await sandboxOf(id).process.executeCommand(`sh -c ${shellQuote(command)}`);
      if (result.exitCode !== 0)
        throw new Error(
          `raw daytona: \`${command.slice(0, 80)}\` exited ${result.exitCode}: ${result.result}`,
        );
    },
    upload: (id, path, data) => sandboxOf(id).fs.uploadFile(Buffer.from(data), path),
    measure: {
      async create() {
        let id = '';
        const ms = await time(async () => {
          id = await make();
        });
        await remove(id);
        return ms;
      },
      exec: (id) =>
        time(async () => {
          const result = await sandboxOf(id).process.executeCommand('true');
          if (result.exitCode !== 0) throw new Error(`raw daytona: true exited ${result.exitCode}`);
        }),
      write_1mib: (id, path, data) => time(() => sandboxOf(id).fs.uploadFile(Buffer.from(data), path)),
      read_1mib: (id, path) => time(() => sandboxOf(id).fs.downloadFile(path)),
      suspend: (id) => time(() => rawTier[tier].suspend(sandboxOf(id))),
      resume: (id) => time(() => rawTier[tier].resume(sandboxOf(id))),
      async fork(id) {
        let child: Sandbox | undefined;
        const ms = await time(async () => {
          child = await sandboxOf(id).fork({}, 120);
        });
        boxes.set(child!.id, child!);
        return { ms, child: child!.id };
      },
      destroy: (child) => time(() => remove(child!)),
    },
  };
}

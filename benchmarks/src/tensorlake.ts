/**
 * `pnpm bench -- --provider tensorlake`: every statebox operation through `@statebox/tensorlake` beside
 * the same operation through the raw `tensorlake` SDK, alternating, in one run against one loopback
 * emulator (or the service in live mode). Reports medians and the adapter's overhead against the target:
 * at most 5 % or 2 ms, whichever is larger.
 */
import { randomBytes } from 'node:crypto';
import { createStatebox, type Sandbox } from '@statebox/core';
import { tensorlake } from '@statebox/tensorlake';
import { isLive, startEmulatedTensorlake } from '@statebox/tensorlake/testing';
import { TensorlakeRaw } from './raw-sdk/tensorlake.ts';
import { median } from './stats.ts';

type Row = {
  operation: string;
  runs: number;
  adapterMs: number;
  rawMs: number;
  overheadMs: number;
  overheadPct: number;
  withinTarget: boolean;
  note: string;
};

export type TensorlakeBenchOptions = { runs: number; execRuns: number; progress: (message: string) => void };

export async function runTensorlakeBenchmark(options: TensorlakeBenchOptions) {
  const emulated = isLive() ? undefined : await startEmulatedTensorlake();
  const providerOptions = emulated?.options ?? {};
  const pollIntervalMs = 20;
  const provider = tensorlake({ ...providerOptions, pollIntervalMs });
  const statebox = createStatebox({ provider });
  // The raw SDK side, shared with the comparison (`--compare`): src/raw-sdk/tensorlake.ts.
  const rawSide = new TensorlakeRaw(
    {
      apiUrl: providerOptions.apiUrl ?? process.env.TENSORLAKE_API_URL,
      apiKey: providerOptions.apiKey ?? process.env.TENSORLAKE_API_KEY,
    },
    pollIntervalMs,
  );
  const raw = rawSide.client;
  const made: { adapter: string[] } = { adapter: [] };
  const time = async (work: () => Promise<unknown>) => {
    const started = performance.now();
    await work();
    return performance.now() - started;
  };
  const rows: Row[] = [];
  const compare = async (
    operation: string,
    runs: number,
    adapter: () => Promise<unknown>,
    rawWork: () => Promise<unknown>,
    note = '',
  ) => {
    options.progress(`${operation} × ${runs}`);
    await adapter();
    await rawWork();
    const a: number[] = [];
    const r: number[] = [];
    for (let run = 0; run < runs; run += 1) {
      a.push(await time(adapter));
      r.push(await time(rawWork));
    }
    const adapterMs = median(a);
    const rawMs = median(r);
    const overheadMs = adapterMs - rawMs;
    const overheadPct = (overheadMs / rawMs) * 100;
    rows.push({
      operation,
      runs,
      adapterMs,
      rawMs,
      overheadMs,
      overheadPct,
      withinTarget: overheadMs <= Math.max(2, rawMs * 0.05),
      note,
    });
  };

  try {
    const box: Sandbox = await statebox.create({ labels: { bench: 'tensorlake' } });
    made.adapter.push(box.id);
    const rawId = await rawSide.create();
    const rawBox = rawSide.connect(rawId);
    const small = randomBytes(4096);
    const large = randomBytes(1024 * 1024);
    await box.writeFile('/workspace/small.bin', small);
    await box.writeFile('/workspace/large.bin', large);
    await rawBox.writeFile('/workspace/small.bin', small);
    await rawBox.writeFile('/workspace/large.bin', large);

    await compare(
      'exec echo',
      options.execRuns,
      () => box.exec(['echo', 'hello']),
      () => rawBox.run('echo', { args: ['hello'] }),
      'adapter: exec script (files, stat, base64, rm; a watchdog only with a timeout or signal) for byte-exact split output',
    );
    await compare(
      'readFile 4 KiB',
      options.execRuns,
      () => box.readFile('/workspace/small.bin'),
      () => rawBox.readFile('/workspace/small.bin'),
      'adapter: one run (stat + inline base64) instead of GET',
    );
    await compare(
      'readFile 1 MiB',
      options.runs * 3,
      () => box.readFile('/workspace/large.bin'),
      () => rawBox.readFile('/workspace/large.bin'),
      'adapter: one run, base64 inline (files up to 2 MiB)',
    );
    await compare(
      'writeFile 4 KiB',
      options.execRuns,
      () => box.writeFile('/workspace/w-small.bin', small),
      () => rawBox.writeFile('/workspace/w-small.bin', small),
      'adapter: one run (atomic rename, mode)',
    );
    await compare(
      'writeFile 1 MiB',
      options.runs * 3,
      () => box.writeFile('/workspace/w-large.bin', large),
      () => rawBox.writeFile('/workspace/w-large.bin', large),
      'adapter: PUT staged beside the target, then rename run',
    );
    await compare(
      'get',
      options.execRuns,
      () => provider.get(box.id),
      () => raw.get(rawId),
    );
    await compare(
      'list',
      options.runs * 3,
      () => provider.list({ labels: { bench: 'tensorlake' } }),
      () => raw.list(),
    );
    await compare(
      'suspend + resume',
      options.runs,
      async () => {
        await box.suspend();
        await box.resume();
      },
      async () => {
        await rawSide.suspend(rawId);
        await rawSide.resume(rawId);
      },
      `raw SDK polled at the same ${pollIntervalMs} ms`,
    );
    await compare(
      'suspend + resume (SDK defaults)',
      Math.min(options.runs, 3),
      async () => {
        await box.suspend();
        await box.resume();
      },
      async () => {
        await raw.suspend(rawId);
        await raw.resume(rawId);
      },
      'raw SDK with its default 1 s poll: the floor the adapter avoids',
    );
    await compare(
      'fork (running source)',
      options.runs,
      async () => {
        const child = await box.fork({ labels: { bench: 'tensorlake-child' } });
        made.adapter.push(child.id);
      },
      () => rawSide.fork(rawId),
      'copy + naming the copy',
    );
    await compare(
      'create + destroy',
      options.runs,
      async () => {
        const other = await statebox.create({ labels: { bench: 'tensorlake-create' } });
        await other.destroy();
      },
      async () => {
        const id = await rawSide.create();
        await rawSide.delete(id);
      },
      'adapter: plus one setup run (workdir, env file)',
    );
    return {
      ok: true as const,
      rows,
      target: 'overhead ≤ max(5 %, 2 ms)',
      backend: emulated ? `emulator ${emulated.url}` : 'live Tensorlake',
    };
  } finally {
    for (const id of made.adapter) await provider.destroy(id).catch(() => undefined);
    await rawSide.cleanup();
    await emulated?.close();
  }
}

export function formatTensorlakeTable(rows: Row[]): string {
  const lines = [
    'operation                          runs  adapter ms   raw SDK ms  overhead        target  note',
  ];
  for (const row of rows) {
    lines.push(
      `${row.operation.padEnd(34)} ${String(row.runs).padStart(4)} ${row.adapterMs.toFixed(2).padStart(11)} ${row.rawMs.toFixed(2).padStart(12)} ${`${row.overheadMs >= 0 ? '+' : ''}${row.overheadMs.toFixed(2)} ms ${row.overheadPct.toFixed(0)}%`.padStart(15)}  ${row.withinTarget ? 'met   ' : 'MISSED'}  ${row.note}`,
    );
  }
  return `${lines.join('\n')}\n`;
}

/**
 * `node benchmarks/adapter-ab.ts` (N=20 samples by default, WHICH=tl,dt, EXECONLY=1 for exec only): an
 * older build of the Tensorlake and Daytona adapters beside the current one and the raw SDK, interleaved
 * sample by sample in one run against one emulator, so that a change's effect is not lost in the shared
 * machine's load. Before running, put the older build in `packages/<name>/dist-old` (check the old
 * sources out, `pnpm --filter @statebox/<name> build`, copy `dist` to `dist-old`, restore and rebuild).
 */

import { Daytona } from '@daytonaio/sdk';
import { startDaytonaForTests } from '@statebox/daytona/testing';
import { tensorlake } from '@statebox/tensorlake';
import { startEmulatedTensorlake } from '@statebox/tensorlake/testing';
import { SandboxClient } from 'tensorlake';
import { median } from './src/stats.ts';

const oldTl = await import('../packages/tensorlake/dist-old/index.js');
const oldDt = await import('../packages/daytona/dist-old/index.js');
const N = Number(process.env.N ?? 20);
const which = process.env.WHICH ?? 'tl,dt';
const time = async (f: () => Promise<unknown>) => {
  const t = performance.now();
  await f();
  return performance.now() - t;
};
const rows: string[] = [];
/** One sandbox made and destroyed through a provider (old or new build). */
async function createDestroy(provider: {
  create(request: { labels: Record<string, string> }): Promise<{ id: string }>;
  destroy(id: string): Promise<void>;
}): Promise<void> {
  await provider.destroy((await provider.create({ labels: {} })).id);
}
async function compare(op: string, runs: number, sides: Record<string, () => Promise<unknown>>) {
  const names = Object.keys(sides);
  const s: Record<string, number[]> = {};
  for (const n of names) {
    await sides[n]!();
    s[n] = [];
  }
  for (let i = 0; i < runs; i++)
    for (const n of i % 2 ? [...names].reverse() : names) s[n]!.push(await time(sides[n]!));
  const m = Object.fromEntries(names.map((n) => [n, median(s[n]!)]));
  const line = `${op.padEnd(22)} old ${m.old!.toFixed(1).padStart(7)}  new ${m.new!.toFixed(1).padStart(7)}  raw ${m.raw!.toFixed(1).padStart(7)}   old-raw ${(m.old! - m.raw!).toFixed(1).padStart(6)}  new-raw ${(m.new! - m.raw!).toFixed(1).padStart(6)}`;
  console.log(line);
  rows.push(line);
}
const small = new Uint8Array(4096).map((_, i) => i % 251);
const mib = new Uint8Array(1 << 20).map((_, i) => i % 251);
const opts = { cwd: '/workspace', maxOutputBytes: 16 << 20 };
const chatty = 'head -c 100000 /dev/zero | tr "\\0" a';
if (which.includes('tl')) {
  const em = await startEmulatedTensorlake();
  const o = { ...em.options, pollIntervalMs: 20 };
  const pNew = tensorlake(o);
  const pOld = oldTl.tensorlake(o);
  const raw = new SandboxClient({ apiUrl: o.apiUrl, apiKey: o.apiKey }, true);
  const a = (await pOld.create({ labels: {} })).id;
  const b = (await pNew.create({ labels: {} })).id;
  const { sandboxId: r } = await raw.create({ name: 'rawab' });
  for (;;) {
    if ((await raw.get(r)).status === 'running') break;
    await new Promise((x) => setTimeout(x, 20));
  }
  const h = raw.connect(r, undefined, undefined, undefined, undefined);
  for (const [id, p] of [
    [a, pOld],
    [b, pNew],
  ] as const) {
    await p.writeFile(id, '/workspace/s.bin', small, {});
    await p.writeFile(id, '/workspace/l.bin', mib, {});
  }
  await h.writeFile('/workspace/s.bin', small);
  await h.writeFile('/workspace/l.bin', mib);
  console.log('tensorlake');
  await compare('exec echo', N * 2, {
    old: () => pOld.exec(a, { command: ['echo', 'hello'], ...opts }),
    new: () => pNew.exec(b, { command: ['echo', 'hello'], ...opts }),
    raw: () => h.run('echo', { args: ['hello'] }),
  });
  if (!process.env.EXECONLY)
    await compare('exec 100 KB', N, {
      old: () => pOld.exec(a, { command: chatty, ...opts }),
      new: () => pNew.exec(b, { command: chatty, ...opts }),
      raw: () => h.run('/bin/sh', { args: ['-c', chatty] }),
    });
  if (!process.env.EXECONLY)
    await compare('readFile 4 KiB', N, {
      old: () => pOld.readFile(a, '/workspace/s.bin', { maxBytes: 1 << 26 }),
      new: () => pNew.readFile(b, '/workspace/s.bin', { maxBytes: 1 << 26 }),
      raw: () => h.readFile('/workspace/s.bin'),
    });
  if (!process.env.EXECONLY)
    await compare('readFile 1 MiB', N, {
      old: () => pOld.readFile(a, '/workspace/l.bin', { maxBytes: 1 << 26 }),
      new: () => pNew.readFile(b, '/workspace/l.bin', { maxBytes: 1 << 26 }),
      raw: () => h.readFile('/workspace/l.bin'),
    });
  if (!process.env.EXECONLY)
    await compare('writeFile 4 KiB', N, {
      old: () => pOld.writeFile(a, '/workspace/w.bin', small, {}),
      new: () => pNew.writeFile(b, '/workspace/w.bin', small, {}),
      raw: () => h.writeFile('/workspace/w.bin', small),
    });
  if (!process.env.EXECONLY)
    await compare('writeFile 1 MiB', N, {
      old: () => pOld.writeFile(a, '/workspace/W.bin', mib, {}),
      new: () => pNew.writeFile(b, '/workspace/W.bin', mib, {}),
      raw: () => h.writeFile('/workspace/W.bin', mib),
    });
  if (!process.env.EXECONLY)
    await compare('create + destroy', Math.ceil(N / 3), {
      old: () => createDestroy(pOld),
      new: () => createDestroy(pNew),
      raw: async () => {
        const { sandboxId } = await raw.create({ name: `rawab${Math.random().toString(36).slice(2, 8)}` });
        for (;;) {
          if ((await raw.get(sandboxId)).status === 'running') break;
          await new Promise((x) => setTimeout(x, 20));
        }
        await raw.delete(sandboxId);
      },
    });
  await pOld.destroy(a);
  await pNew.destroy(b);
  await raw.delete(r);
  await em.close();
}
if (which.includes('dt')) {
  const em = await startDaytonaForTests({});
  const base = {
    apiKey: em.emulator.apiKey,
    apiUrl: em.emulator.apiUrl,
    target: em.emulator.target,
    polling: true,
    tier: 'stop' as const,
    autoStopAfter: 0,
  };
  const newDt = await import('../packages/daytona/dist/index.js');
  const pNew = newDt.daytona(base);
  const pOld = oldDt.daytona(base);
  const o = pNew.options;
  const sdk = new Daytona({
    apiKey: o.apiKey,
    apiUrl: o.apiUrl,
    target: o.target,
    useDeprecatedPolling: o.polling,
    otelEnabled: false,
  });
  const a = (await pOld.create({ labels: {} })).id;
  const b = (await pNew.create({ labels: {} })).id;
  const r = await sdk.create({ autoStopInterval: 0 }, { timeout: 120 });
  for (const [id, p] of [
    [a, pOld],
    [b, pNew],
  ] as const) {
    await p.writeFile(id, '/workspace/s.bin', small.subarray(0, 1024), {});
    await p.writeFile(id, '/workspace/l.bin', mib, {});
  }
  await r.fs.uploadFile(Buffer.from(small.subarray(0, 1024)), '/tmp/s.bin');
  await r.fs.uploadFile(Buffer.from(mib), '/tmp/l.bin');
  console.log('daytona');
  await compare('exec true', N * 2, {
    old: () => pOld.exec(a, { command: 'true', ...opts }),
    new: () => pNew.exec(b, { command: 'true', ...opts }),
    raw: () => r.process.executeCommand('true'),
  });
  await compare('exec echo', N, {
    old: () => pOld.exec(a, { command: 'echo hello', ...opts }),
    new: () => pNew.exec(b, { command: 'echo hello', ...opts }),
    raw: () => r.process.executeCommand('echo hello'),
  });
  if (!process.env.EXECONLY)
    await compare('exec 100 KB', N, {
      old: () => pOld.exec(a, { command: chatty, ...opts }),
      new: () => pNew.exec(b, { command: chatty, ...opts }),
      raw: () => r.process.executeCommand(chatty),
    });
  if (!process.env.EXECONLY)
    await compare('readFile 1 KiB', N, {
      old: () => pOld.readFile(a, '/workspace/s.bin', { maxBytes: 1 << 26 }),
      new: () => pNew.readFile(b, '/workspace/s.bin', { maxBytes: 1 << 26 }),
      raw: () => r.fs.downloadFile('/tmp/s.bin'),
    });
  if (!process.env.EXECONLY)
    await compare('readFile 1 MiB', N, {
      old: () => pOld.readFile(a, '/workspace/l.bin', { maxBytes: 1 << 26 }),
      new: () => pNew.readFile(b, '/workspace/l.bin', { maxBytes: 1 << 26 }),
      raw: () => r.fs.downloadFile('/tmp/l.bin'),
    });
  if (!process.env.EXECONLY)
    await compare('writeFile 1 KiB', N, {
      old: () => pOld.writeFile(a, '/workspace/w.bin', small.subarray(0, 1024), {}),
      new: () => pNew.writeFile(b, '/workspace/w.bin', small.subarray(0, 1024), {}),
      raw: () => r.fs.uploadFile(Buffer.from(small.subarray(0, 1024)), '/tmp/w.bin'),
    });
  if (!process.env.EXECONLY)
    await compare('writeFile 1 MiB', N, {
      old: () => pOld.writeFile(a, '/workspace/W.bin', mib, {}),
      new: () => pNew.writeFile(b, '/workspace/W.bin', mib, {}),
      raw: () => r.fs.uploadFile(Buffer.from(mib), '/tmp/W.bin'),
    });
  if (!process.env.EXECONLY)
    await compare('create + destroy', Math.ceil(N / 3), {
      old: () => createDestroy(pOld),
      new: () => createDestroy(pNew),
      raw: async () => {
        const s = await sdk.create({ autoStopInterval: 0 }, { timeout: 120 });
        await s.delete(120);
      },
    });
  await pOld.destroy(a);
  await pNew.destroy(b);
  await r.delete(120);
  await em.close();
}

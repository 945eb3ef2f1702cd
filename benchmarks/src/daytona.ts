/**
 * `pnpm bench -- --provider daytona`: each operation through the adapter beside the same operation through
 * the raw `@daytonaio/sdk`, in the same run, against the loopback Daytona emulator (or real Daytona with
 * `STATEBOX_LIVE=daytona` and `DAYTONA_API_KEY`), interleaved sample by sample so both see the same load.
 * Suspend and resume are measured for each tier. Medians; overhead = adapter − raw.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { Sandbox } from '@daytonaio/sdk';
import type { DaytonaProvider, SuspendTier } from '@statebox/daytona';
import { daytona } from '@statebox/daytona';
import { liveSkipReason, startDaytonaForTests } from '@statebox/daytona/testing';
import { machineInfo } from './machine.ts';
import { daytonaClient, rawCreate, rawTier } from './raw-sdk/daytona.ts';
import { median, percentile, round, time } from './stats.ts';

type Row = {
  operation: string;
  samples: number;
  adapterMedianMs: number;
  rawMedianMs: number;
  overheadMs: number;
  overheadPercent: number;
  adapterP90Ms: number;
  rawP90Ms: number;
  /** Whether the adapter stays within 5% or 2 ms of the raw SDK (the target). */
  withinTarget: boolean;
};

const WORKDIR = '/workspace';

function row(operation: string, adapter: number[], raw: number[]): Row {
  const a = median(adapter);
  const r = median(raw);
  return {
    operation,
    samples: adapter.length,
    adapterMedianMs: round(a),
    rawMedianMs: round(r),
    overheadMs: round(a - r),
    overheadPercent: round(((a - r) / r) * 100),
    adapterP90Ms: round(percentile(adapter, 90)),
    rawP90Ms: round(percentile(raw, 90)),
    withinTarget: a - r <= 2 || (a - r) / r <= 0.05,
  };
}

/** Runs `adapter` and `raw` alternately `runs` times (which goes first alternates too). */
async function pair(runs: number, adapter: () => Promise<unknown>, raw: () => Promise<unknown>) {
  const a: number[] = [];
  const r: number[] = [];
  for (let index = 0; index < runs; index++) {
    if (index % 2 === 0) {
      a.push(await time(adapter));
      r.push(await time(raw));
    } else {
      r.push(await time(raw));
      a.push(await time(adapter));
    }
  }
  return [a, r] as const;
}

export async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      provider: { type: 'string' },
      runs: { type: 'string' },
      'exec-runs': { type: 'string' },
      'results-dir': { type: 'string' },
    },
    strict: true,
  });
  const runs = Number(values.runs ?? 7);
  const execRuns = Number(values['exec-runs'] ?? 40);
  const resultsDir = values['results-dir'] ?? join(import.meta.dirname, '..', 'results');
  const progress = (message: string) =>
    process.stderr.write(`[bench daytona ${new Date().toISOString().slice(11, 19)}] ${message}\n`);

  const live = liveSkipReason() === undefined;
  const emulated = live ? undefined : await startDaytonaForTests({});
  const providerFor = (tier: SuspendTier): DaytonaProvider =>
    emulated ? emulated.newProvider({ tier, autoStopAfter: 0 }) : daytona({ tier, autoStopAfter: 0 });
  const provider = providerFor('stop');
  const options = provider.options;
  // The raw SDK side, shared with the comparison (`--compare`): src/raw-sdk/daytona.ts.
  const sdk = daytonaClient(options);
  const rows: Row[] = [];
  const cleanup: string[] = [];
  const rawSandboxes: Sandbox[] = [];
  const machine = machineInfo();
  try {
    progress(`create x${runs}`);
    const [createA, createR] = await pair(
      runs,
      async () => cleanup.push((await provider.create({ labels: { bench: 'daytona' } })).id),
      async () => rawSandboxes.push(await rawCreate(sdk)),
    );
    rows.push(row('create', createA, createR));

    const id = cleanup[0]!;
    const raw = rawSandboxes[0]!;
    progress(`exec x${execRuns}`);
    const request = { command: 'true', cwd: WORKDIR, maxOutputBytes: 16 * 1024 * 1024 };
    rows.push(
      row(
        'exec `true`',
        ...(await pair(
          execRuns,
          () => provider.exec(id, request),
          () => raw.process.executeCommand('true'),
        )),
      ),
    );
    const chatty = { ...request, command: 'head -c 100000 /dev/zero | tr "\\0" a' };
    rows.push(
      row(
        'exec 100 KB of output',
        ...(await pair(
          execRuns,
          () => provider.exec(id, chatty),
          () => raw.process.executeCommand(chatty.command),
        )),
      ),
    );

    for (const [name, bytes] of [
      ['1 KiB', 1024],
      ['1 MiB', 1024 * 1024],
      ['8 MiB', 8 * 1024 * 1024],
    ] as const) {
      const data = new Uint8Array(bytes).map((_, index) => index % 251);
      progress(`files ${name} x${execRuns}`);
      rows.push(
        row(
          `writeFile ${name}`,
          ...(await pair(
            execRuns,
            () => provider.writeFile(id, `${WORKDIR}/bench.bin`, data),
            () => raw.fs.uploadFile(Buffer.from(data), `/tmp/bench.bin`),
          )),
        ),
      );
      rows.push(
        row(
          `readFile ${name}`,
          ...(await pair(
            execRuns,
            () => provider.readFile(id, `${WORKDIR}/bench.bin`, { maxBytes: 64 * 1024 * 1024 }),
            () => raw.fs.downloadFile('/tmp/bench.bin'),
          )),
        ),
      );
    }

    for (const tier of ['stop', 'pause', 'archive'] as const) {
      const tiered = providerFor(tier);
      progress(`suspend/resume tier ${tier} x${runs}`);
      const suspendA: number[] = [];
      const suspendR: number[] = [];
      const resumeA: number[] = [];
      const resumeR: number[] = [];
      for (let index = 0; index < runs; index++) {
        suspendA.push(await time(() => tiered.suspend(id)));
        suspendR.push(await time(() => rawTier[tier].suspend(raw)));
        resumeA.push(await time(() => tiered.resume(id)));
        resumeR.push(await time(() => rawTier[tier].resume(raw)));
      }
      rows.push(row(`suspend (${tier})`, suspendA, suspendR));
      rows.push(row(`resume from ${tier}`, resumeA, resumeR));
    }

    progress(`fork x${runs}`);
    const children: string[] = [];
    const rawChildren: Sandbox[] = [];
    rows.push(
      row(
        'fork (running source)',
        ...(await pair(
          runs,
          async () => children.push((await provider.fork(id, { labels: { bench: 'child' } })).id),
          async () => rawChildren.push(await raw.fork({}, 120)),
        )),
      ),
    );
    progress('destroy');
    const [destroyA, destroyR] = await pair(
      children.length,
      () => provider.destroy(children.pop()!),
      () => rawChildren.pop()!.delete(120),
    );
    rows.push(row('destroy', destroyA, destroyR));
  } finally {
    for (const sandboxId of cleanup) await provider.destroy(sandboxId).catch(() => undefined);
    for (const sandbox of rawSandboxes) await sandbox.delete(120).catch(() => undefined);
    await emulated?.close();
  }

  const result = {
    benchmark: 'daytona adapter vs raw @daytonaio/sdk',
    backend: live
      ? `live Daytona at ${options.apiUrl}`
      : 'loopback emulator (@statebox/daytona-emulator on the local provider)',
    date: new Date().toISOString(),
    runs,
    execRuns,
    machine,
    rows,
  };
  const lines = [
    `\nstatebox daytona benchmark (${result.backend}); medians in ms`,
    'operation                   adapter      raw  overhead       %  within 5%/2ms',
    ...rows.map(
      (r) =>
        `${r.operation.padEnd(26)}${r.adapterMedianMs.toFixed(1).padStart(9)}${r.rawMedianMs.toFixed(1).padStart(9)}${r.overheadMs.toFixed(1).padStart(10)}${r.overheadPercent.toFixed(1).padStart(8)}  ${r.withinTarget ? 'yes' : 'no'}`,
    ),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  await mkdir(resultsDir, { recursive: true });
  const stamp = result.date.replaceAll(':', '-');
  for (const name of [`daytona-${stamp}.json`, 'latest-daytona.json']) {
    await writeFile(join(resultsDir, name), `${JSON.stringify(result, null, 2)}\n`);
    process.stdout.write(`wrote ${join(resultsDir, name)}\n`);
  }
  return 0;
}

import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sha256 } from '@statebox/adapter-kit';
import { createStatebox, type Sandbox, type Statebox } from '@statebox/core';
import {
  captureManifest,
  compareManifests,
  type FidelityCheck,
  FidelityError,
  MARKER,
  type Manifest,
  verifyState,
} from './fidelity.ts';
import { type MachineInfo, machineInfo } from './machine.ts';
import { run } from './process.ts';
import type { Baseline, FigureId, OpenedScenario, Scenario, Target } from './scenarios.ts';
import { median, percentile, round, time } from './stats.ts';
import {
  type GeneratedWorkspace,
  generateWorkspace,
  planWorkspace,
  SCRATCH_DIR,
  WORKSPACE,
  type WorkspaceSize,
} from './workspace.ts';

export type RunOptions = {
  scenario: Scenario;
  size: WorkspaceSize;
  /** Repetitions of each lifecycle operation and file transfer. */
  runs: number;
  /** Repetitions of exec. */
  execRuns: number;
  /** Repetitions of the slow baselines (copy, archive, extract), interleaved with the first statebox runs. */
  baselineRuns: number;
  /** State directory; a temp dir under /tmp (removed afterwards) when absent. */
  home: string | undefined;
  image: string | undefined;
  progress(message: string): void;
};

export type Figure = {
  id: FigureId;
  operation: string;
  /** Which statistic `value` is, for both sides. */
  statistic: 'median' | 'p99';
  statebox: { value: number; samples: number[] };
  baseline: { name: string; description: string; value: number; samples: number[]; derived?: string } | null;
  /** baseline value / statebox value: how many times faster statebox is. */
  speedup: number | null;
  target: Target | null;
  met: boolean | null;
};

export type BenchmarkResult = {
  schemaVersion: 1;
  runId: string;
  provider: string;
  size: string;
  startedAt: string;
  finishedAt: string;
  ok: boolean;
  error: string | null;
  machine: MachineInfo;
  options: { runs: number; execRuns: number; baselineRuns: number };
  baselinesRun: string;
  workspace: (Omit<GeneratedWorkspace, 'sampleHashes'> & { manifest: Manifest }) | null;
  figures: Figure[];
  fidelity: { passed: boolean; checks: FidelityCheck[] };
};

export type Outcome = { skipped: string } | { result: BenchmarkResult };

const LABEL = 'statebox-bench';
const operations: Record<FigureId, string> = {
  create: 'create',
  exec_p50: 'exec `true` p50',
  exec_p99: 'exec `true` p99',
  write_1mib: 'writeFile 1 MiB',
  read_1mib: 'readFile 1 MiB',
  write_64mib: 'writeFile 64 MiB',
  read_64mib: 'readFile 64 MiB',
  suspend: 'suspend',
  resume: 'resume',
  fork: 'fork (running, fresh writes)',
  fork_x5: 'fork x5 of one source',
  destroy: 'destroy (a fork)',
};

type Samples = { statebox: number[]; baseline: number[] };

/**
 * Flushes dirty pages host-wide, untimed. Unmounting an overlay syncs its whole upper filesystem, so a
 * local suspend right after 700 MB of unrelated writes took 143-518 ms here against 4-10 ms after a sync:
 * without this, statebox's suspend and fork would pay for the baseline's copies and archives.
 */
async function flushDirtyPages(): Promise<void> {
  await run('sync', []);
}

/**
 * Set while a run is in progress: destroys its sandboxes and state. The CLI calls it on SIGINT/SIGTERM,
 * because local sandboxes are detached processes that would otherwise outlive an interrupted run.
 */
export let abortCleanup: (() => Promise<void>) | undefined;

export async function runBenchmark(options: RunOptions): Promise<Outcome> {
  const { scenario, progress } = options;
  const runId = `${Date.now().toString(36)}${randomBytes(2).toString('hex')}`;
  const startedAt = new Date().toISOString();
  const machineBefore = machineInfo();
  const ownHome = options.home === undefined;
  const home = options.home ?? (await mkdtemp(join(tmpdir(), 'statebox-bench-')));
  const hostDir = await mkdtemp(join(tmpdir(), 'statebox-bench-host-'));
  let opened: OpenedScenario | undefined;
  let statebox: Statebox | undefined;
  const live = new Set<Sandbox>();
  const checks: FidelityCheck[] = [];
  const samples = new Map<string, Samples>();
  const baselineInfo = new Map<string, Baseline>();
  let workspace: BenchmarkResult['workspace'] = null;
  let error: unknown;

  const record = (check: FidelityCheck) => {
    checks.push(check);
    if (!check.ok) progress(`FIDELITY FAILED after ${check.after}: ${check.problems.join('; ')}`);
  };
  const series = (key: string): Samples => {
    let found = samples.get(key);
    if (!found) {
      found = { statebox: [], baseline: [] };
      samples.set(key, found);
    }
    return found;
  };
  const create = async (): Promise<Sandbox> => {
    const sandbox = await statebox!.create({ labels: { [LABEL]: runId } });
    live.add(sandbox);
    return sandbox;
  };
  const fork = async (source: Sandbox): Promise<Sandbox> => {
    const child = await source.fork({ labels: { [LABEL]: runId } });
    live.add(child);
    return child;
  };
  const destroy = async (sandbox: Sandbox): Promise<number> => {
    const ms = await time(() => sandbox.destroy());
    live.delete(sandbox);
    return ms;
  };

  abortCleanup = async () => {
    await cleanUp(live, statebox, runId, progress);
    await opened?.close().catch(() => undefined);
    await rm(hostDir, { recursive: true, force: true });
    if (ownHome) await rm(home, { recursive: true, force: true }).catch(() => undefined);
  };
  try {
    const outcome = await scenario.open({ home, runId, image: options.image });
    if ('skip' in outcome) return { skipped: outcome.skip };
    opened = outcome;
    statebox = createStatebox({ provider: opened.provider });
    progress(`provider ${scenario.provider}, state in ${home}, run ${runId}`);

    // create: an empty sandbox, answering exec. Destroyed right after (untimed here).
    const createSeries = series('create');
    let createBaseline: Baseline | undefined;
    const warm = await create();
    await destroy(warm);
    for (let index = 0; index < options.runs; index++) {
      let sandbox: Sandbox | undefined;
      createSeries.statebox.push(
        await time(async () => {
          sandbox = await create();
        }),
      );
      const answer = await sandbox!.exec('ls -A /workspace');
      const check: FidelityCheck = {
        after: `create #${index + 1}`,
        sandboxId: sandbox!.id,
        ok: answer.exitCode === 0 && answer.stdout.trim() === '',
        problems:
          answer.exitCode === 0 && answer.stdout.trim() === ''
            ? []
            : [
                `new sandbox: exit ${answer.exitCode}, /workspace holds ${JSON.stringify(answer.stdout.slice(0, 80))}`,
              ],
        ms: 0,
      };
      record(check);
      if (!check.ok) throw new FidelityError(check);
      await destroy(sandbox!);
    }

    // The main sandbox and its workspace.
    const main = await create();
    const plan = planWorkspace(options.size);
    progress(
      `generating the ${options.size.name} workspace in sandbox ${main.id}: ${plan.files.length + 1} files`,
    );
    const generated = await generateWorkspace(
      plan,
      {
        async extract(archive) {
          const result = await main.exec(['tar', '-x', '-f', '-', '-C', WORKSPACE], { stdin: archive });
          if (result.exitCode !== 0)
            throw new Error(
              `tar -x in sandbox ${main.id} exited ${result.exitCode}: ${result.stderr.trim()}`,
            );
        },
        async writeRandom(path, bytes) {
          const result = await main.exec([
            '/bin/sh',
            '-c',
            `head -c ${bytes} /dev/urandom > ${WORKSPACE}/${path}`,
          ]);
          if (result.exitCode !== 0)
            throw new Error(`writing ${path} in sandbox ${main.id} failed: ${result.stderr.trim()}`);
        },
      },
      progress,
    );
    const expected = await captureManifest(main, plan.sample);
    {
      // The workspace as extracted must match what the generator produced, or every later check is moot.
      const reference: Manifest = { fileCount: generated.files, hashes: { ...generated.sampleHashes } };
      const problems = compareManifests(reference, {
        fileCount: expected.fileCount,
        hashes: expected.hashes,
      });
      const check: FidelityCheck = {
        after: 'generate',
        sandboxId: main.id,
        ok: problems.length === 0,
        problems,
        ms: 0,
      };
      record(check);
      if (!check.ok) throw new FidelityError(check);
    }
    const { sampleHashes: _, ...generatedSummary } = generated;
    workspace = { ...generatedSummary, manifest: expected };
    progress(
      `generated ${generated.files} files, ${(generated.bytes / 1024 / 1024).toFixed(0)} MiB in ${(generated.generationMs / 1000).toFixed(1)} s (not a benchmark figure)`,
    );

    const baselines = await opened.baselines({ sandbox: main, plan, hostDir, runId, progress });
    await flushDirtyPages();
    for (const [key, baseline] of Object.entries(baselines)) baselineInfo.set(key, baseline);
    const createBaselineSamples = createSeries.baseline;
    createBaseline = baselines.create;
    for (let index = 0; index < options.runs; index++)
      createBaselineSamples.push(await createBaseline.measure());
    progress(
      `create: median ${median(createSeries.statebox).toFixed(1)} ms, ${createBaseline.name} ${median(createBaselineSamples).toFixed(1)} ms`,
    );

    // exec: interleaved with the baseline, alternating which goes first, so both see the same noise.
    const execSeries = series('exec');
    for (let index = 0; index < 5; index++) {
      await main.exec('true');
      await baselines.exec.measure();
    }
    for (let index = 0; index < options.execRuns; index++) {
      const measureStatebox = async () => {
        const started = performance.now();
        const result = await main.exec('true');
        const ms = performance.now() - started;
        if (result.exitCode !== 0)
          throw new Error(`exec true in sandbox ${main.id} exited ${result.exitCode}: ${result.stderr}`);
        execSeries.statebox.push(ms);
      };
      const measureBaseline = async () => {
        execSeries.baseline.push(await baselines.exec.measure());
      };
      if (index % 2 === 0) {
        await measureStatebox();
        await measureBaseline();
      } else {
        await measureBaseline();
        await measureStatebox();
      }
    }
    progress(
      `exec: p50 ${median(execSeries.statebox).toFixed(2)} ms, p99 ${percentile(execSeries.statebox, 99).toFixed(2)} ms`,
    );

    // writeFile / readFile, verified byte for byte by hash.
    for (const [label, bytes] of [
      ['1mib', 1024 * 1024],
      ['64mib', 64 * 1024 * 1024],
    ] as const) {
      const data = randomBytes(bytes);
      const digest = sha256(data);
      const writes = series(`write_${label}`);
      const reads = series(`read_${label}`);
      const path = `${WORKSPACE}/${SCRATCH_DIR}/io.bin`;
      for (let index = 0; index < options.runs; index++) {
        writes.statebox.push(await time(() => main.writeFile(path, data)));
        writes.baseline.push(await baselines.write.measure(data));
        let read: Uint8Array = new Uint8Array();
        reads.statebox.push(
          await time(async () => {
            read = await main.readFile(path);
          }),
        );
        reads.baseline.push(await baselines.read.measure(data));
        const found = sha256(read);
        const check: FidelityCheck = {
          after: `writeFile/readFile ${label} #${index + 1}`,
          sandboxId: main.id,
          ok: found === digest,
          problems:
            found === digest
              ? []
              : [
                  `read back ${read.length} bytes with sha256 ${found.slice(0, 12)}…, wrote ${bytes} bytes ${digest.slice(0, 12)}…`,
                ],
          ms: 0,
        };
        record(check);
        if (!check.ok) throw new FidelityError(check);
      }
      progress(
        `write/read ${label}: ${median(writes.statebox).toFixed(1)} / ${median(reads.statebox).toFixed(1)} ms`,
      );
    }
    await main.exec(['rm', '-f', `${WORKSPACE}/${SCRATCH_DIR}/io.bin`]);

    // suspend + resume, with a marker written just before and the whole manifest checked after.
    const suspends = series('suspend');
    const resumes = series('resume');
    for (let index = 0; index < options.runs; index++) {
      const marker = `suspend ${runId} #${index + 1}`;
      await main.writeFile(`${WORKSPACE}/${MARKER}`, marker);
      suspends.statebox.push(await time(() => main.suspend()));
      if (main.status !== 'suspended')
        throw new Error(`sandbox ${main.id} reports ${main.status} after suspend()`);
      resumes.statebox.push(await time(() => main.resume()));
      await verifyState(main, `suspend+resume #${index + 1}`, expected, plan.sample, marker, record);
      if (index < options.baselineRuns) {
        suspends.baseline.push(await baselines.suspend.measure());
        resumes.baseline.push(await baselines.resume.measure());
        await flushDirtyPages();
      }
    }
    progress(
      `suspend ${median(suspends.statebox).toFixed(1)} ms (tar ${median(suspends.baseline).toFixed(0)} ms), resume ${median(resumes.statebox).toFixed(1)} ms (untar ${median(resumes.baseline).toFixed(0)} ms)`,
    );

    // fork of a running sandbox with fresh writes since its last fork, so every fork seals real data.
    const forks = series('fork');
    const destroys = series('destroy');
    for (let index = 0; index < options.runs; index++) {
      const marker = `fork ${runId} #${index + 1}`;
      await main.writeFile(`${WORKSPACE}/${SCRATCH_DIR}/fresh-${index}.bin`, randomBytes(1024 * 1024));
      await main.writeFile(`${WORKSPACE}/${MARKER}`, marker);
      let child: Sandbox | undefined;
      forks.statebox.push(
        await time(async () => {
          child = await fork(main);
        }),
      );
      await verifyState(child!, `fork #${index + 1} (child)`, expected, plan.sample, marker, record);
      await verifyState(main, `fork #${index + 1} (source)`, expected, plan.sample, marker, record);
      destroys.statebox.push(await destroy(child!));
      if (index < options.baselineRuns) {
        forks.baseline.push(await baselines.fork.measure());
        destroys.baseline.push(await baselines.destroy.measure());
        await flushDirtyPages();
      }
    }
    progress(`fork ${median(forks.statebox).toFixed(1)} ms (cp -a ${median(forks.baseline).toFixed(0)} ms)`);

    // five forks of one source, requested together, as an agent fanning out would.
    const fanOut = series('fork_x5');
    for (let index = 0; index < options.runs; index++) {
      const marker = `fan-out ${runId} #${index + 1}`;
      await main.writeFile(`${WORKSPACE}/${SCRATCH_DIR}/fan-out-${index}.bin`, randomBytes(1024 * 1024));
      await main.writeFile(`${WORKSPACE}/${MARKER}`, marker);
      let children: Sandbox[] = [];
      fanOut.statebox.push(
        await time(async () => {
          children = await Promise.all(Array.from({ length: 5 }, () => fork(main)));
        }),
      );
      for (const [number, child] of children.entries()) {
        await verifyState(
          child,
          `fork x5 #${index + 1} (child ${number + 1})`,
          expected,
          plan.sample,
          marker,
          record,
        );
      }
      if (index === 0) await checkIsolation(main, children, record);
      for (const child of children) await destroy(child);
    }
    const copyMedian = median(forks.baseline);
    progress(
      `fork x5 ${median(fanOut.statebox).toFixed(1)} ms (5 x cp -a ${(5 * copyMedian).toFixed(0)} ms)`,
    );

    await destroy(main);
  } catch (caught) {
    error = caught;
    progress(`FAILED: ${caught instanceof Error ? caught.message : String(caught)}`);
  } finally {
    abortCleanup = undefined;
    await cleanUp(live, statebox, runId, progress);
    await opened
      ?.close()
      .catch((closeError: Error) => progress(`cleaning up the baselines failed: ${closeError.message}`));
    await rm(hostDir, { recursive: true, force: true });
    if (ownHome) await rm(home, { recursive: true, force: true }).catch(() => undefined);
  }

  const machine = { ...machineBefore, loadAverageAfter: machineInfo().loadAverageBefore };
  const result: BenchmarkResult = {
    schemaVersion: 1,
    runId,
    provider: scenario.provider,
    size: options.size.name,
    startedAt,
    finishedAt: new Date().toISOString(),
    ok: error === undefined,
    error: error === undefined ? null : error instanceof Error ? error.message : String(error),
    machine,
    options: { runs: options.runs, execRuns: options.execRuns, baselineRuns: options.baselineRuns },
    baselinesRun:
      'Baselines are measured in the same run, interleaved with the statebox repetitions. Copy, archive and ' +
      'extract baselines run inside the benchmark sandbox (same filesystem, same exec path); exec, create and ' +
      'file baselines as described per figure.',
    workspace,
    figures: buildFigures(samples, baselineInfo, scenario.targets),
    fidelity: { passed: error === undefined && checks.every((check) => check.ok), checks },
  };
  return { result };
}

/** A child's write must not reach its source or its siblings. */
async function checkIsolation(
  source: Sandbox,
  children: Sandbox[],
  record: (check: FidelityCheck) => void,
): Promise<void> {
  const started = performance.now();
  const problems: string[] = [];
  for (const [number, child] of children.entries()) {
    await child.writeFile(`${WORKSPACE}/${SCRATCH_DIR}/only-child-${number}`, `child ${number}`);
  }
  for (const [number, observer] of [source, ...children].entries()) {
    const listing = await observer.exec([
      '/bin/sh',
      '-c',
      `ls ${WORKSPACE}/${SCRATCH_DIR} | grep only-child- || true`,
    ]);
    const seen = listing.stdout.split('\n').filter(Boolean);
    const own = number === 0 ? [] : [`only-child-${number - 1}`];
    const foreign = seen.filter((name) => !own.includes(name));
    if (foreign.length > 0)
      problems.push(`${number === 0 ? 'source' : `child ${number}`} sees ${foreign.join(', ')}`);
  }
  const check: FidelityCheck = {
    after: 'fork x5 (isolation between siblings)',
    sandboxId: source.id,
    ok: problems.length === 0,
    problems,
    ms: performance.now() - started,
  };
  record(check);
  if (!check.ok) throw new FidelityError(check);
}

async function cleanUp(
  live: Set<Sandbox>,
  statebox: Statebox | undefined,
  runId: string,
  progress: (message: string) => void,
) {
  for (const sandbox of live) {
    await sandbox
      .destroy()
      .catch((error: Error) => progress(`destroying ${sandbox.id} failed: ${error.message}`));
  }
  live.clear();
  if (!statebox) return;
  // Anything created but never handed back (a fork that failed half-way) still carries the run's label.
  const leftovers = await statebox.list({ labels: { [LABEL]: runId } }).catch(() => []);
  for (const sandbox of leftovers) {
    progress(`destroying leftover sandbox ${sandbox.id}`);
    await sandbox
      .destroy()
      .catch((error: Error) => progress(`destroying ${sandbox.id} failed: ${error.message}`));
  }
}

function buildFigures(
  samples: Map<string, Samples>,
  baselines: Map<string, Baseline>,
  targets: Target[],
): Figure[] {
  const figures: Figure[] = [];
  const add = (
    id: FigureId,
    key: string,
    baselineKey: string,
    statistic: 'median' | 'p99',
    derive?: { factor: number; from: string; note: string },
  ) => {
    const found = samples.get(key);
    if (!found || found.statebox.length === 0) return;
    const stat = (values: number[]) => (statistic === 'median' ? median(values) : percentile(values, 99));
    const baseline = baselines.get(baselineKey);
    let baselineSamples = found.baseline;
    if (derive)
      baselineSamples = (samples.get(derive.from)?.baseline ?? []).map((value) => value * derive.factor);
    const value = round(stat(found.statebox));
    const baselineValue = baselineSamples.length > 0 ? round(stat(baselineSamples)) : Number.NaN;
    const target = targets.find((candidate) => candidate.figure === id) ?? null;
    const speedup =
      baseline && Number.isFinite(baselineValue) && value > 0 ? round(baselineValue / value) : null;
    let met: boolean | null = null;
    if (target) {
      met = true;
      if (target.maxMs !== undefined) met &&= value <= target.maxMs;
      if (target.minSpeedup !== undefined) met &&= speedup !== null && speedup >= target.minSpeedup;
    }
    figures.push({
      id,
      operation: operations[id],
      statistic,
      statebox: { value, samples: found.statebox.map(round) },
      baseline:
        baseline && Number.isFinite(baselineValue)
          ? {
              name: derive ? `5 x ${baseline.name}` : baseline.name,
              description: baseline.description,
              value: baselineValue,
              samples: baselineSamples.map(round),
              ...(derive && { derived: derive.note }),
            }
          : null,
      speedup,
      target,
      met,
    });
  };
  add('create', 'create', 'create', 'median');
  add('exec_p50', 'exec', 'exec', 'median');
  add('exec_p99', 'exec', 'exec', 'p99');
  add('write_1mib', 'write_1mib', 'write', 'median');
  add('read_1mib', 'read_1mib', 'read', 'median');
  add('write_64mib', 'write_64mib', 'write', 'median');
  add('read_64mib', 'read_64mib', 'read', 'median');
  add('suspend', 'suspend', 'suspend', 'median');
  add('resume', 'resume', 'resume', 'median');
  add('fork', 'fork', 'fork', 'median');
  add('fork_x5', 'fork_x5', 'fork', 'median', {
    factor: 5,
    from: 'fork',
    note: 'five times each sample of the single-fork baseline, not measured separately: five naive forks per repetition would dominate the run',
  });
  add('destroy', 'destroy', 'destroy', 'median');
  return figures;
}

import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type MachineInfo, machineInfo } from '../machine.ts';
import { planWorkspace, type WorkspaceSize } from '../workspace.ts';
import { type Candidate, discover } from './backends.ts';
import { type CostModel, idleCosts, loadPrices } from './costs.ts';
import { openDriver } from './drivers.ts';
import { type LifecycleResult, lifecycleOperations, runLifecycle } from './lifecycle.ts';
import type { RawResult, RawSdk } from './raw.ts';
import { runSeed, type SeedResult } from './seed.ts';
import { type Driver, type Source, sourceText } from './types.ts';

export type CompareOptions = {
  size: WorkspaceSize;
  rounds: number;
  execPerRound: number;
  idleMs: number;
  only: string[] | undefined;
  live: string[];
  dockerImage: string;
  home: string | undefined;
  progress(message: string): void;
};

export type BackendEntry =
  | {
      name: string;
      library: string;
      available: true;
      backend: string;
      source: Source;
      declared: { suspend: string; fork: string };
      rawSdk: string | null;
    }
  | { name: string; library: string; available: false; reason: string };

export type CompareResult = {
  schemaVersion: 1;
  kind: 'compare';
  runId: string;
  startedAt: string;
  finishedAt: string;
  ok: boolean;
  machine: MachineInfo;
  options: {
    size: string;
    files: number;
    rounds: number;
    execPerRound: number;
    idleMs: number;
  };
  sources: Record<Source, string>;
  operations: { id: string; label: string }[];
  backends: BackendEntry[];
  lifecycle: LifecycleResult[];
  seed: SeedResult[];
  /** Per cloud backend with a raw SDK: adapter vs raw medians from the same lifecycle rounds. */
  raw: RawResult[];
  costs: CostModel;
};

/** Runs the comparison on every backend that can run here; the rest are listed with their reasons. */
export async function runCompare(options: CompareOptions): Promise<CompareResult> {
  const { progress } = options;
  const runId = `${Date.now().toString(36)}${randomBytes(2).toString('hex')}`;
  const startedAt = new Date().toISOString();
  const machineBefore = machineInfo();
  const ownHome = options.home === undefined;
  const home = options.home ?? (await mkdtemp(join(tmpdir(), 'statebox-compare-')));
  const scratch = await mkdtemp(join(tmpdir(), 'statebox-compare-scratch-'));
  const candidates: Candidate[] = await discover({
    runId,
    home,
    scratch,
    only: options.only,
    live: options.live,
    dockerImage: options.dockerImage,
    progress,
  });
  const drivers: Driver[] = [];
  const entries: BackendEntry[] = [];
  const raws = new Map<string, RawSdk>();
  const specs = new Map<string, Extract<Candidate['outcome'], { spec: unknown }>['spec']>();
  let lifecycle: LifecycleResult[] = [];
  const seed: SeedResult[] = [];
  const raw: RawResult[] = [];
  try {
    for (const candidate of candidates) {
      const { outcome } = candidate;
      if ('unavailable' in outcome) {
        entries.push({
          name: candidate.name,
          library: candidate.library,
          available: false,
          reason: outcome.unavailable,
        });
        continue;
      }
      try {
        const driver = await openDriver(outcome.spec);
        drivers.push(driver);
        specs.set(driver.name, outcome.spec);
        if (outcome.raw) raws.set(driver.name, outcome.raw);
        entries.push({
          name: driver.name,
          library: driver.library,
          available: true,
          backend: driver.backend,
          source: driver.source,
          declared: driver.declared,
          rawSdk: outcome.raw?.sdk ?? null,
        });
      } catch (error) {
        entries.push({
          name: candidate.name,
          library: candidate.library,
          available: false,
          reason: `its driver did not open: ${(error as Error).message.split('\n')[0]}`,
        });
      }
    }
    progress(`comparing ${drivers.map((driver) => driver.name).join(', ') || 'nothing'}`);
    const plan = planWorkspace(options.size);
    const measured = await runLifecycle(drivers, {
      plan,
      rounds: options.rounds,
      execPerRound: options.execPerRound,
      raws,
      progress,
    });
    lifecycle = measured.lanes;
    raw.push(...measured.raw);
    // The seed scenario, one backend after the other (each takes seconds; noise is in the load average).
    for (const driver of drivers) {
      progress(`${driver.name}: seed scenario`);
      seed.push(await runSeed(driver, specs.get(driver.name)!, { idleMs: options.idleMs, progress }));
    }
  } finally {
    for (const driver of drivers)
      await driver.close().catch((error: Error) => progress(`closing ${driver.name}: ${error.message}`));
    for (const candidate of candidates)
      if ('close' in candidate.outcome) await candidate.outcome.close().catch(() => undefined);
    await rm(scratch, { recursive: true, force: true });
    if (ownHome) await rm(home, { recursive: true, force: true }).catch(() => undefined);
  }
  const costs = idleCosts(await loadPrices());
  const ok =
    lifecycle.every((result) => result.error === null && result.checks.every((check) => check.ok)) &&
    seed.every((result) => result.ok) &&
    raw.every((result) => result.error === null);
  return {
    schemaVersion: 1,
    kind: 'compare',
    runId,
    startedAt,
    finishedAt: new Date().toISOString(),
    ok,
    machine: { ...machineBefore, loadAverageAfter: machineInfo().loadAverageBefore },
    options: {
      size: options.size.name,
      files: options.size.files + 1,
      rounds: options.rounds,
      execPerRound: options.execPerRound,
      idleMs: options.idleMs,
    },
    sources: sourceText,
    operations: lifecycleOperations.map(([id, label]) => ({ id, label })),
    backends: entries,
    lifecycle,
    seed,
    raw,
    costs,
  };
}

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createStatebox, type Statebox } from '@statebox/core';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { local } from '../src/index.js';
import { freezerSkipReason, localSuiteSkip } from '../src/testing.js';
import {
  destroyAll,
  leftovers,
  manifest,
  rootless,
  settle,
  startWorker,
  stoppedProcesses,
  writeTemporaries,
} from './crash-support.js';

/** Local sandboxes need Linux namespaces and overlayfs: each suite here is skipped, with the reason, without them. */
const skip = localSuiteSkip();
const skipped = skip ? ` (skipped: ${skip})` : '';

/**
 * Several processes act on one sandbox at once, as several orchestrators sharing a state directory
 * would: every operation succeeds or fails with a typed statebox error, none wedges (each one has a
 * 60 s watchdog, the whole run a bound), and at the end the sandbox's files are consistent: the seeded
 * ones unchanged, each written file holding its last acknowledged content or a later attempted one.
 * Run with the freezer cgroup and with SIGSTOP freezing (hosts without it), where an exec's nsenter used
 * to be left stopped by a fork. STATEBOX_SOAK=1 runs ten times longer.
 */

const SOAK = process.env.STATEBOX_SOAK === '1' ? 10 : 1;
const WORKERS = 4;
const MIX_MS = 8_000 * SOAK;
const RACE_ROUNDS = 60 * SOAK;

type Report = {
  outcomes: Record<string, Record<string, number>>;
  problems: string[];
  wedged: string[];
  writes: { path: string; content: string; ok: boolean }[];
};

let home: string;
const fresh = (): Statebox => createStatebox({ provider: local({ home }) });
const summaries: Record<string, unknown> = {};

beforeEach(async () => {
  home = await mkdtemp(join(tmpdir(), 'statebox-concurrency-'));
});

afterEach(async () => {
  await destroyAll(fresh()).catch(() => undefined);
  await rm(home, { recursive: true, force: true });
});

afterAll(() => {
  console.log(
    `concurrency outcomes (STATEBOX_SOAK=${SOAK === 10 ? 1 : 0}):\n${JSON.stringify(summaries, null, 1)}`,
  );
});

/** A running sandbox with 200 random files and base.txt, started by a process of the given kind. */
async function seed(freezer: boolean): Promise<string> {
  const worker = startWorker('operation.mjs', { home, operation: 'seed', files: 200 }, { freezer });
  const { done, stderr } = await worker.exit;
  if (!done?.id) throw new Error(`seeding failed: ${stderr}`);
  await (await fresh().get(done.id)).writeFile('base.txt', 'base');
  return done.id;
}

async function runWorkers(arguments_: object[], freezer: boolean, boundMs: number): Promise<Report[]> {
  const workers = arguments_.map((argument) => startWorker('concurrent.mjs', argument, { freezer }));
  const timer = setTimeout(() => {
    for (const worker of workers) worker.child.kill('SIGKILL');
  }, boundMs);
  const exits = await Promise.all(workers.map((worker) => worker.exit));
  clearTimeout(timer);
  return exits.map(({ stdout, stderr, code }) => {
    const line = stdout.trim().split('\n').at(-1) ?? '';
    if (code !== 0 || !line.startsWith('{'))
      throw new Error(`worker ended with ${code} (wedged?): ${stderr}`);
    return JSON.parse(line) as Report;
  });
}

function merge(reports: Report[]): Record<string, Record<string, number>> {
  const merged: Record<string, Record<string, number>> = {};
  for (const report of reports) {
    for (const [operation, outcomes] of Object.entries(report.outcomes)) {
      merged[operation] ??= {};
      for (const [outcome, count] of Object.entries(outcomes))
        merged[operation][outcome] = (merged[operation][outcome] ?? 0) + count;
    }
  }
  return merged;
}

/** The contents a path may hold: its last acknowledged write, or any attempted after it (or none). */
function allowedContents(writes: Report['writes']): Map<string, Set<string | undefined>> {
  const byPath = new Map<string, Report['writes']>();
  for (const write of writes) byPath.set(write.path, [...(byPath.get(write.path) ?? []), write]);
  const allowed = new Map<string, Set<string | undefined>>();
  for (const [path, attempts] of byPath) {
    const lastOk = attempts.map((write) => write.ok).lastIndexOf(true);
    const possible = new Set<string | undefined>(
      attempts.slice(Math.max(lastOk, 0)).map((write) => write.content),
    );
    if (lastOk === -1) possible.add(undefined);
    allowed.set(`/workspace/${path}`, possible);
  }
  return allowed;
}

async function checkEnd(
  sandboxId: string,
  before: Record<string, string>,
  reports: Report[],
): Promise<number> {
  const box = await fresh().get(sandboxId);
  await box.resume();
  const files = await manifest(box);
  const allowed = allowedContents(reports.flatMap((report) => report.writes));
  for (const [path, contents] of allowed) {
    const hash = files[path];
    const text = hash === undefined ? undefined : await box.readFile(path, 'utf8');
    expect(contents, path).toContain(text);
    delete files[path];
  }
  expect(files).toEqual(before);
  expect(stoppedProcesses(home).join('; ')).toBe('');
  // A writeFile that a suspend killed inside the sandbox cannot remove its temporary file.
  const temporaries = (await writeTemporaries(box)).length;
  await destroyAll(fresh());
  expect((await settle(() => leftovers(home))).join('; ')).toBe('');
  return temporaries;
}

describe.skipIf(Boolean(skip))(
  `concurrent operations on one sandbox from several processes${skipped}`,
  () => {
    const modes = [
      {
        name: 'freezer cgroup',
        freezer: true,
        skip: freezerSkipReason(),
      },
      { name: 'SIGSTOP', freezer: false, skip: undefined },
    ];
    for (const mode of modes) {
      it.skipIf(mode.skip)(
        `${WORKERS} processes, ${MIX_MS / 1000} s of exec, readFile, writeFile, suspend, resume, fork, get (${mode.name})`,
        { timeout: MIX_MS + 180_000 },
        async () => {
          const sandboxId = await seed(mode.freezer);
          const before = await manifest(await fresh().get(sandboxId));
          const reports = await runWorkers(
            Array.from({ length: WORKERS }, (_, worker) => ({
              home,
              sandboxId,
              worker,
              durationMs: MIX_MS,
              mode: 'mix',
            })),
            mode.freezer,
            MIX_MS + 120_000,
          );
          const outcomes = merge(reports);
          expect(reports.flatMap((report) => report.problems)).toEqual([]);
          expect(reports.flatMap((report) => report.wedged)).toEqual([]);
          const temporaries = await checkEnd(sandboxId, before, reports);
          summaries[`mix, ${mode.name}`] = { outcomes, writeTemporariesLeft: temporaries };
          expect(outcomes.exec?.ok).toBeGreaterThan(0);
          expect(outcomes.fork?.ok).toBeGreaterThan(0);
        },
      );
    }

    it(`exec racing a fork of its running sandbox, ${RACE_ROUNDS} rounds (SIGSTOP freezing)`, {
      timeout: 120_000 * SOAK,
    }, async () => {
      const sandboxId = await seed(false);
      const before = await manifest(await fresh().get(sandboxId));
      const reports = await runWorkers(
        [{ home, sandboxId, worker: 0, rounds: RACE_ROUNDS, mode: 'race' }],
        false,
        90_000 * SOAK,
      );
      const outcomes = merge(reports);
      summaries['exec racing fork, SIGSTOP'] = { outcomes };
      expect(reports[0]!.problems).toEqual([]);
      expect(reports[0]!.wedged).toEqual([]);
      // A fork whose source will not hold still within 2 s (a loaded host) seals and restarts it instead:
      // an exec it interrupts fails with InvalidStateError (1 of 600 in a soak run here).
      const others = Object.keys(outcomes.exec ?? {}).filter(
        (outcome) => !['ok', 'InvalidStateError'].includes(outcome),
      );
      expect(others).toEqual([]);
      // Rootless, a fork of a running sandbox always seals (no copy path): it restarts the source, so an
      // exec it overlaps is interrupted with InvalidStateError by design; some still finish first.
      if (rootless) expect(outcomes.exec?.ok).toBeGreaterThan(0);
      else expect(outcomes.exec?.ok).toBeGreaterThanOrEqual(RACE_ROUNDS * 0.9);
      await checkEnd(sandboxId, before, reports);
    });
  },
);

import { spawnSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * Smoke test of the harness itself: a small run against the local provider must produce every figure,
 * pass every fidelity check and leave no sandbox behind. It asserts nothing about durations.
 */

const figureIds = [
  'create',
  'exec_p50',
  'exec_p99',
  'write_1mib',
  'read_1mib',
  'write_64mib',
  'read_64mib',
  'suspend',
  'resume',
  'fork',
  'fork_x5',
  'destroy',
];

type Figure = {
  id: string;
  statebox: { value: number; samples: number[] };
  baseline: { name: string; value: number; samples: number[] } | null;
  target: unknown;
  met: boolean | null;
};

describe('pnpm bench --size small (local)', () => {
  let scratch: string;
  let home: string;
  let resultsDir: string;
  let run: ReturnType<typeof spawnSync>;

  beforeAll(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'statebox-bench-test-'));
    home = join(scratch, 'home');
    resultsDir = join(scratch, 'results');
    run = spawnSync(
      process.execPath,
      [
        join(import.meta.dirname, '..', 'run.ts'),
        '--provider',
        'local',
        '--size',
        'small',
        '--runs',
        '2',
        '--exec-runs',
        '10',
        '--baseline-runs',
        '1',
        '--home',
        home,
        '--results-dir',
        resultsDir,
      ],
      { encoding: 'utf8', env: { ...process.env, STATEBOX_HOME: home }, timeout: 110_000 },
    );
  }, 120_000);

  afterAll(async () => {
    await rm(scratch, { recursive: true, force: true });
  });

  it('exits 0 and prints the table', () => {
    expect(run.error).toBeUndefined();
    expect(run.status, String(run.stderr)).toBe(0);
    expect(String(run.stdout)).toMatch(/fork \(running, fresh writes\)/);
    expect(String(run.stdout)).toMatch(/fidelity: all \d+ checks passed/);
  });

  it('writes the timestamped JSON and the latest copy with every figure', async () => {
    const files = await readdir(resultsDir);
    expect(files).toContain('latest-local-small.json');
    expect(files.some((name) => /^local-small-\d{4}-\d\d-\d\dT.*\.json$/.test(name))).toBe(true);
    const result = JSON.parse(await readFile(join(resultsDir, 'latest-local-small.json'), 'utf8'));
    expect(result.ok).toBe(true);
    expect(result.provider).toBe('local');
    expect(result.size).toBe('small');
    expect(result.machine.cpus).toBeGreaterThan(0);
    expect(result.machine.kernel).toEqual(expect.any(String));
    expect(result.machine.node).toMatch(/^v\d+/);
    expect(result.workspace.files).toBeGreaterThan(1000);
    const figures = result.figures as Figure[];
    expect(figures.map((figure) => figure.id).sort()).toEqual([...figureIds].sort());
    for (const figure of figures) {
      expect(Number.isFinite(figure.statebox.value), figure.id).toBe(true);
      expect(figure.statebox.samples.length, figure.id).toBeGreaterThan(0);
      expect(figure.baseline, `${figure.id} has a baseline`).not.toBeNull();
      expect(Number.isFinite(figure.baseline!.value), figure.id).toBe(true);
    }
    const targeted = figures.filter((figure) => figure.target).map((figure) => figure.id);
    expect(targeted.sort()).toEqual(['exec_p50', 'fork', 'resume', 'suspend']);
  });

  it('checked state after every lifecycle operation and all checks passed', async () => {
    const result = JSON.parse(await readFile(join(resultsDir, 'latest-local-small.json'), 'utf8'));
    expect(result.fidelity.passed).toBe(true);
    const after = (result.fidelity.checks as { after: string; ok: boolean }[]).map((check) => check.after);
    for (const operation of [
      'create',
      'generate',
      'suspend+resume',
      'fork #1 (child)',
      'fork #1 (source)',
      'fork x5',
      'isolation',
    ]) {
      expect(
        after.some((name) => name.includes(operation)),
        operation,
      ).toBe(true);
    }
    expect(result.fidelity.checks.every((check: { ok: boolean }) => check.ok)).toBe(true);
  });

  it('destroys every sandbox it created', async () => {
    const left = await readdir(join(home, 'sandboxes')).catch(() => []);
    expect(left.filter((name) => !name.startsWith('.'))).toEqual([]);
  });
});

import { spawnSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * Smoke test of the runner benchmark: a tiny run (20 calls per series, 3 sessions) must write every
 * figure, hold every correctness check and leave no sandbox behind. It asserts nothing about durations.
 */

type Summary = { p50: number; p99: number; count: number; samples: number[] };

function expectSummary(summary: Summary, what: string): void {
  expect(Number.isFinite(summary.p50), `${what} p50`).toBe(true);
  expect(Number.isFinite(summary.p99), `${what} p99`).toBe(true);
  expect(summary.count, `${what} count`).toBeGreaterThan(0);
  expect(summary.samples.length, `${what} samples`).toBe(summary.count);
}

describe('pnpm bench -- --scenario runner (tiny)', () => {
  let scratch: string;
  let home: string;
  let resultsDir: string;
  let run: ReturnType<typeof spawnSync>;

  beforeAll(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'statebox-runner-bench-test-'));
    home = join(scratch, 'home');
    resultsDir = join(scratch, 'results');
    run = spawnSync(
      process.execPath,
      [
        join(import.meta.dirname, '..', 'run.ts'),
        '--scenario',
        'runner',
        '--calls',
        '20',
        '--rounds',
        '2',
        '--sessions',
        '3',
        '--concurrency',
        '3,2',
        '--idle-ms',
        '200',
        '--home',
        home,
        '--results-dir',
        resultsDir,
      ],
      { encoding: 'utf8', timeout: 110_000 },
    );
  }, 120_000);

  afterAll(async () => {
    await rm(scratch, { recursive: true, force: true });
  });

  it('exits 0 and prints the table', () => {
    expect(run.error).toBeUndefined();
    expect(run.status, String(run.stderr)).toBe(0);
    expect(String(run.stdout)).toMatch(/\(c\) runner: tool_use in -> result out/);
    expect(String(run.stdout)).toMatch(/every tool_use answered exactly once/);
  });

  it('writes the timestamped JSON and the latest copy with every figure', async () => {
    const files = await readdir(resultsDir);
    expect(files).toContain('latest-runner.json');
    expect(files.some((name) => /^runner-\d{4}-\d\d-\d\dT.*\.json$/.test(name))).toBe(true);
    const result = JSON.parse(await readFile(join(resultsDir, 'latest-runner.json'), 'utf8'));
    expect(result.ok).toBe(true);
    expect(result.scenario).toBe('runner');
    expect(result.machine.cpus).toBeGreaterThan(0);
    expect(Object.keys(result.definitions)).toEqual(
      expect.arrayContaining(['bare', 'tool', 'runner', 'toolLayerOverhead', 'runnerOverhead']),
    );
    expect(result.overhead.map((each: { tool: string }) => each.tool)).toEqual(['bash', 'read']);
    for (const each of result.overhead) {
      for (const series of ['bare', 'toolRun', 'endToEnd', 'runnerToolRun'])
        expectSummary(each[series], `${each.tool} ${series}`);
      expect(each.bare.count).toBe(20);
      expect(each.toolRun.count).toBe(20);
      expect(each.breakdown.map((probe: { id: string }) => probe.id)).toEqual([
        'exec_bash',
        'exec_tool_shape',
        ...(each.tool === 'bash' ? ['tool_journaled'] : []),
      ]);
      for (const probe of each.breakdown) expectSummary(probe, `${each.tool} ${probe.id}`);
      for (const overhead of [each.overhead.toolLayer, each.overhead.runner]) {
        expect(Number.isFinite(overhead.p50)).toBe(true);
        expect(Number.isFinite(overhead.p99)).toBe(true);
        expect(overhead.targetMaxMs).toBe(5);
        expect(typeof overhead.met).toBe('boolean');
      }
    }
    expect(result.concurrency.map((each: { concurrency: number }) => each.concurrency)).toEqual([3, 2]);
    for (const each of result.concurrency) {
      expect(each.sessions).toBe(3);
      expect(Number.isFinite(each.wallMs)).toBe(true);
      expect(Number.isFinite(each.callsPerSecond)).toBe(true);
      for (const series of ['sessionTurn', 'sandboxReady', 'toolCall', 'toolRun'])
        expectSummary(each[series], `concurrency ${each.concurrency} ${series}`);
      expect(each.sessionTurn.count).toBe(3);
    }
  });

  it('held correctness: every session passed and every tool_use was answered exactly once', async () => {
    const result = JSON.parse(await readFile(join(resultsDir, 'latest-runner.json'), 'utf8'));
    expect(result.correct).toBe(true);
    for (const each of result.concurrency) {
      expect(each.correctness.passed).toBe(true);
      expect(each.correctness.sessionsPassed).toBe(3);
      expect(each.correctness.toolUses).toBe(3 * each.toolCallsPerSession);
      expect(each.correctness.answeredOnce).toBe(each.correctness.toolUses);
      expect(each.correctness.problems).toEqual([]);
      expect(each.correctness.runnerErrors).toEqual([]);
    }
  });

  it('destroys every sandbox it created', async () => {
    const left = await readdir(join(home, 'sandboxes')).catch(() => []);
    expect(left.filter((name) => !name.startsWith('.'))).toEqual([]);
  });
});

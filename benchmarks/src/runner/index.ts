import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createStatebox, type Statebox } from '@statebox/core';
import { local } from '@statebox/local';
import { type StateboxEmulator, startEmulator } from '@statebox/managed-agents-emulator';
import { type MachineInfo, machineInfo } from '../machine.ts';
import { type ConcurrencyResult, measureConcurrency } from './concurrency.ts';
import { measureOverhead, OVERHEAD_TARGET_MS, type OverheadResult } from './overhead.ts';
import { overheadTranscript, sessionTranscript } from './transcripts.ts';
import { WireTap } from './wire.ts';

export type RunnerBenchOptions = {
  /** Calls per series in the overhead part (each of bash and read). */
  calls: number;
  /** Interleaved blocks the overhead series are split into. */
  rounds: number;
  /** Sessions created at once in the concurrency part. */
  sessions: number;
  /** Runner `concurrency` values, one concurrency run each. */
  concurrency: number[];
  /** Runner idleMs in the concurrency part. */
  idleMs: number;
  /** State directory; a temp dir under /tmp (removed afterwards) when absent. */
  home: string | undefined;
  progress(message: string): void;
};

export type RunnerBenchResult = {
  schemaVersion: 1;
  scenario: 'runner';
  runId: string;
  provider: 'local';
  startedAt: string;
  finishedAt: string;
  ok: boolean;
  error: string | null;
  machine: MachineInfo;
  options: Omit<RunnerBenchOptions, 'home' | 'progress'>;
  definitions: Record<string, string>;
  overhead: OverheadResult[];
  concurrency: ConcurrencyResult[];
  /** Every session of every part: expectations held and each tool_use answered exactly once. */
  correct: boolean;
};

export const definitions: Record<string, string> = {
  bare: '(a) the provider operation the tool performs, called directly on the session sandbox: sandbox.exec("true") for bash, sandbox.readFile of a 1 KiB file for read',
  tool: "(b) the tool's run() from createToolset, called directly on the same sandbox (no runner, no HTTP)",
  runner:
    "(c) inside the runner serving an emulator session: from the SSE frame carrying agent.tool_use reaching the runner's fetch to the runner starting the POST of its user.tool_result (a fetch installed before new Runner() timestamps both; the runner is not modified)",
  toolLayerOverhead: 'p50(b) - p50(a), and p99(b) - p99(a)',
  runnerOverhead: `p50(c) - p50(a), and p99(c) - p99(a); target p50 <= ${OVERHEAD_TARGET_MS} ms`,
  interleaving:
    'each series is split into `rounds` blocks; every round runs one block of each series, in reversed order every other round, all in this process and on one sandbox',
  sessionTurn: 'per session: createSession (with its message) -> the emulator ended its turn',
  toolCall: 'per call, as (c)',
  correct:
    'emulator.report(sessionId).passed for every session, every expect held, report.answers all 1 and one answer per tool step, no rejected result, no runner error event',
};

/** Runs both parts on the local provider with the emulator in this process. Never throws: see `ok`/`error`. */
export async function runRunnerBenchmark(options: RunnerBenchOptions): Promise<RunnerBenchResult> {
  const { progress } = options;
  const startedAt = new Date().toISOString();
  const machine = machineInfo();
  const ownHome = options.home === undefined;
  const home = options.home ?? (await mkdtemp(join(tmpdir(), 'statebox-bench-runner-')));
  const tap = new WireTap();
  const overhead: OverheadResult[] = [];
  const concurrency: ConcurrencyResult[] = [];
  let emulator: StateboxEmulator | undefined;
  let statebox: Statebox | undefined;
  let error: unknown;
  try {
    if (process.platform !== 'linux')
      throw new Error(`the local provider needs Linux namespaces; this is ${process.platform}`);
    tap.install();
    // stepDelayMs 0: the scripted "model" answers at once, so turn times are the runner's and the sandbox's.
    emulator = await startEmulator({ stepDelayMs: 0, transcripts: [overheadTranscript, sessionTranscript] });
    statebox = createStatebox({ provider: local({ home }) });
    progress(`emulator ${emulator.url}, local provider, state in ${home}`);
    overhead.push(
      ...(await measureOverhead({
        emulator,
        statebox,
        tap,
        calls: options.calls,
        rounds: options.rounds,
        progress,
      })),
    );
    for (const slots of options.concurrency) {
      progress(`concurrency ${slots}: ${options.sessions} sessions created at once`);
      try {
        concurrency.push(
          await measureConcurrency({
            emulator,
            statebox,
            tap,
            sessions: options.sessions,
            concurrency: slots,
            idleMs: options.idleMs,
            progress,
          }),
        );
      } catch (failure) {
        const partial = (failure as { result?: ConcurrencyResult }).result;
        if (partial) concurrency.push(partial);
        throw failure;
      }
    }
  } catch (failure) {
    error = failure;
    progress(`FAILED: ${describe(failure)}`);
  } finally {
    tap.uninstall();
    await emulator?.close().catch(() => undefined);
    if (statebox) {
      const left = await statebox.list().catch(() => []);
      await Promise.all(left.map((sandbox) => sandbox.destroy().catch(() => undefined)));
    }
    if (ownHome) await rm(home, { recursive: true, force: true }).catch(() => undefined);
  }
  const correct =
    error === undefined &&
    concurrency.length === options.concurrency.length &&
    concurrency.every((run) => run.correctness.passed);
  return {
    schemaVersion: 1,
    scenario: 'runner',
    runId: `${Date.now().toString(36)}${randomBytes(2).toString('hex')}`,
    provider: 'local',
    startedAt,
    finishedAt: new Date().toISOString(),
    ok: error === undefined,
    error: error === undefined ? null : describe(error),
    machine: { ...machine, loadAverageAfter: machineInfo().loadAverageBefore },
    options: {
      calls: options.calls,
      rounds: options.rounds,
      sessions: options.sessions,
      concurrency: options.concurrency,
      idleMs: options.idleMs,
    },
    definitions,
    overhead,
    concurrency,
    correct,
  };
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

import type { Statebox } from '@statebox/core';
import {
  type SessionReport,
  type StateboxEmulator,
  TRANSCRIPT_METADATA_KEY,
} from '@statebox/managed-agents-emulator';
import { Runner, type RunnerEvent } from '@statebox/runner';
import { round } from '../stats.ts';
import {
  CorrectnessError,
  destroyEnvironmentSandboxes,
  type Summary,
  sessionProblems,
  summarize,
} from './measure.ts';
import { SESSION_TRANSCRIPT, sessionSteps } from './transcripts.ts';
import type { WireTap } from './wire.ts';

export type ConcurrencyResult = {
  /** The runner's `concurrency` option: sessions served at once. */
  concurrency: number;
  sessions: number;
  toolCallsPerSession: number;
  /** From the first session created to the last turn ended. */
  wallMs: number;
  /** Per session: created (with its message) -> its turn ended in the emulator. */
  sessionTurn: Summary;
  /** Per session: the runner's `sandbox.ready` ms (create of the session's sandbox, under this load). */
  sandboxReady: Summary;
  /** Per call: agent.tool_use SSE frame received -> POST of the result started (timed at fetch). */
  toolCall: Summary;
  /** Per call: the runner's `tool.done` ms (the tool's run() inside the runner). */
  toolRun: Summary;
  /** Tool calls answered per second of wall time. */
  callsPerSecond: number;
  correctness: {
    /** Every session: report passed, every expectation held, every tool_use answered exactly once. */
    passed: boolean;
    sessionsPassed: number;
    toolUses: number;
    /** Distinct tool_use ids with exactly one result post. */
    answeredOnce: number;
    runnerErrors: string[];
    problems: { sessionId: string; problems: string[] }[];
  };
};

export type ConcurrencyOptions = {
  emulator: StateboxEmulator;
  statebox: Statebox;
  tap: WireTap;
  sessions: number;
  concurrency: number;
  /** The runner's idleMs: how long a served session keeps its slot after its turn before suspending. */
  idleMs: number;
  progress(message: string): void;
};

/**
 * Part 2: `sessions` sessions created at once, each with one turn of scripted calls over every tool, and
 * one runner with `concurrency` slots. Throws CorrectnessError, after measuring, if any result was wrong.
 */
export async function measureConcurrency(options: ConcurrencyOptions): Promise<ConcurrencyResult> {
  const { emulator, statebox, tap, progress } = options;
  const environment = emulator.createEnvironment(`runner-bench-c${options.concurrency}`);
  const sessionIds = new Set<string>();
  const sandboxReady: number[] = [];
  const toolRun: number[] = [];
  const runnerErrors: string[] = [];
  const onEvent = (event: RunnerEvent) => {
    if (event.type === 'sandbox.ready' && sessionIds.has(event.sessionId)) sandboxReady.push(event.ms);
    if (event.type === 'tool.done' && sessionIds.has(event.sessionId)) toolRun.push(event.ms);
    if (event.type === 'error') runnerErrors.push(event.message);
  };
  const runner = new Runner({
    baseURL: emulator.url,
    environmentId: environment.id,
    environmentKey: environment.environmentKey,
    statebox,
    concurrency: options.concurrency,
    idleMs: options.idleMs,
    memorySyncIntervalMs: null,
    pollBlockMs: 200,
    onEvent,
  });
  const running = runner.run();
  try {
    const created = new Map<string, number>();
    const ended = new Map<string, number>();
    const started = performance.now();
    for (let index = 0; index < options.sessions; index++) {
      const sessionId = emulator.createSession({
        environmentId: environment.id,
        title: `runner benchmark: session ${index + 1}`,
        metadata: { [TRANSCRIPT_METADATA_KEY]: SESSION_TRANSCRIPT },
        message: `session s${index + 1}`,
      });
      sessionIds.add(sessionId);
      created.set(sessionId, performance.now());
    }
    const reports = await Promise.all(
      [...sessionIds].map((sessionId) =>
        emulator.waitForTurns(sessionId, 1, 600_000).then((report) => {
          ended.set(sessionId, performance.now());
          return report;
        }),
      ),
    );
    const wallMs = Math.max(...ended.values()) - started;
    progress(
      `concurrency ${options.concurrency}: ${options.sessions} sessions in ${(wallMs / 1000).toFixed(2)} s`,
    );
    // Drain and stop before the final check, so a late or duplicate result post is counted too.
    await runner.shutdown();
    await running;
    const final = [...sessionIds].map((sessionId) => emulator.report(sessionId));
    const correctness = checkAll(final, runnerErrors);
    const toolUseIds = reports.flatMap((report) =>
      report.steps.flatMap((step) => (step.type === 'tool_use' && step.eventId ? [step.eventId] : [])),
    );
    const result: ConcurrencyResult = {
      concurrency: options.concurrency,
      sessions: options.sessions,
      toolCallsPerSession: sessionSteps('x').length,
      wallMs: round(wallMs),
      sessionTurn: summarize([...sessionIds].map((id) => ended.get(id)! - created.get(id)!)),
      sandboxReady: summarize(sandboxReady),
      toolCall: summarize(tap.turnaround(toolUseIds)),
      toolRun: summarize(toolRun),
      callsPerSecond: round(toolUseIds.length / (wallMs / 1000)),
      correctness,
    };
    if (!correctness.passed) {
      const first = correctness.problems[0];
      throw Object.assign(
        new CorrectnessError(
          `concurrency ${options.concurrency}: ${options.sessions - correctness.sessionsPassed} of ${options.sessions} sessions wrong` +
            (first ? `; ${first.sessionId}: ${first.problems.join('; ')}` : '') +
            (correctness.runnerErrors.length > 0
              ? `; runner errors: ${correctness.runnerErrors.join('; ')}`
              : ''),
        ),
        { result },
      );
    }
    return result;
  } finally {
    await runner.shutdown();
    await running.catch(() => undefined);
    await destroyEnvironmentSandboxes(statebox, environment.id).catch(() => undefined);
  }
}

function checkAll(reports: SessionReport[], runnerErrors: string[]): ConcurrencyResult['correctness'] {
  const problems = reports
    .map((report) => ({ sessionId: report.sessionId, problems: sessionProblems(report) }))
    .filter((entry) => entry.problems.length > 0);
  const toolUses = reports.reduce(
    (sum, report) => sum + report.steps.filter((step) => step.type === 'tool_use').length,
    0,
  );
  const answeredOnce = reports.reduce(
    (sum, report) => sum + Object.values(report.answers).filter((count) => count === 1).length,
    0,
  );
  return {
    passed: problems.length === 0 && runnerErrors.length === 0 && answeredOnce === toolUses,
    sessionsPassed: reports.length - problems.length,
    toolUses,
    answeredOnce,
    runnerErrors: [...runnerErrors],
    problems,
  };
}

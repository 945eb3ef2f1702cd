import type { Statebox } from '@statebox/core';
import type { SessionReport } from '@statebox/managed-agents-emulator';
import { ENVIRONMENT_LABEL } from '@statebox/runner';
import { percentile, round } from '../stats.ts';

/** p50 and p99 (nearest rank) of a series of milliseconds, with the raw samples in run order. */
export type Summary = { p50: number; p99: number; count: number; samples: number[] };

export function summarize(samples: readonly number[]): Summary {
  return {
    p50: round(percentile(samples, 50)),
    p99: round(percentile(samples, 99)),
    count: samples.length,
    samples: samples.map(round),
  };
}

/**
 * What "every result was correct" means here: the emulator checked every scripted step's `expect` and
 * all held, every tool_use got exactly one result post (none rejected), and there are as many posts as
 * tool steps. Returns the problems, empty when the session is correct.
 */
export function sessionProblems(report: SessionReport): string[] {
  const problems: string[] = [];
  const toolSteps = report.steps.filter((step) => step.type === 'tool_use');
  if (!report.passed) problems.push('emulator report not passed');
  for (const turn of report.turns) if (turn.error) problems.push(`turn error: ${turn.error}`);
  for (const step of toolSteps) {
    if (!step.pass)
      problems.push(
        `step ${step.index} ${step.name} ${JSON.stringify(step.input).slice(0, 80)}: ${step.reason ?? 'failed'}` +
          ` (got ${JSON.stringify((step.content ?? '').slice(0, 120))}${step.isError ? ', is_error' : ''})`,
      );
  }
  const answers = Object.entries(report.answers);
  for (const [id, count] of answers) if (count !== 1) problems.push(`tool_use ${id} answered ${count} times`);
  if (answers.length !== toolSteps.length)
    problems.push(`${answers.length} tool_use ids answered, ${toolSteps.length} tool steps played`);
  for (const rejected of report.rejectedAnswers)
    problems.push(`result for ${rejected.toolUseId} rejected (${rejected.status}): ${rejected.reason}`);
  return problems;
}

/** Destroys every sandbox the runner created for an environment (untimed clean-up). */
export async function destroyEnvironmentSandboxes(
  statebox: Statebox,
  environmentId: string,
): Promise<number> {
  const sandboxes = await statebox.list({ labels: { [ENVIRONMENT_LABEL]: environmentId } });
  await Promise.all(sandboxes.map((sandbox) => sandbox.destroy()));
  return sandboxes.length;
}

export class CorrectnessError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CorrectnessError';
  }
}

import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import type { Statebox } from '@statebox/core';
import type { StateboxEmulator, Transcript, TranscriptStep } from '@statebox/managed-agents-emulator';
import { expect } from 'vitest';
import { FORK_FROM_METADATA, type RunnerEvent, SESSION_LABEL } from '../src/index.js';

/**
 * Shared by the multi-worker tests (local and Docker): worker processes on one emulator environment,
 * transcripts whose every tool call leaves a line in the sandbox, and the checks that each call's
 * result was posted once and its command ran once.
 */

const LOG = '/workspace/calls.log';
const STARTED = '/workspace/started.log';

/**
 * A bash call that notes its tag in the started log, then (after `sleepSeconds`) appends it to the
 * session's log once and answers with the tag.
 */
function call(tag: string, sleepSeconds = 0): TranscriptStep & { type: 'tool_use' } {
  const pause = sleepSeconds > 0 ? `sleep ${sleepSeconds}; ` : '';
  return {
    type: 'tool_use',
    name: 'bash',
    input: { command: `echo ${tag} >> ${STARTED}; ${pause}echo ${tag} >> ${LOG}; echo ${tag}` },
    expect: { equals: tag },
  };
}

/** `count` calls tagged `<name>-<i>`, matched by a message starting with the name. */
export function callsTranscript(name: string, count: number, sleepSeconds = 0): Transcript {
  return {
    name,
    match: `^${name}`,
    steps: Array.from({ length: count }, (_, index) => call(`${name}-${index + 1}`, sleepSeconds)),
  };
}

/** Several calls pending at once in one turn (one `requires_action` naming them all). */
export function fanTranscript(name: string, count: number): Transcript {
  return {
    name,
    match: `^${name}`,
    steps: [
      { type: 'tool_uses', calls: Array.from({ length: count }, (_, index) => call(`${name}-${index + 1}`)) },
      call(`${name}-after`),
    ],
  };
}

export type Worker = {
  name: string;
  process: ChildProcess;
  events: RunnerEvent[];
  /** Sessions it serves now (from `sandbox.ready` until its item ends). */
  serving: Set<string>;
  exited: Promise<number | null>;
};

export class WorkerPool {
  readonly workers: Worker[] = [];
  #count = 0;

  constructor(
    private readonly emulator: StateboxEmulator,
    private readonly environment: { id: string; environmentKey: string },
    private readonly home: string,
    private readonly env: Record<string, string>,
  ) {}

  start(): Worker {
    const name = `w${++this.#count}`;
    const fixture = join(import.meta.dirname, 'fixtures', 'worker-process.mjs');
    const child = spawn(
      process.execPath,
      [fixture, this.emulator.url, this.environment.id, this.environment.environmentKey, this.home],
      {
        cwd: join(import.meta.dirname, '..'),
        stdio: ['ignore', 'pipe', 'inherit'],
        env: { ...process.env, ...this.env, WORKER_ID: name },
      },
    );
    const worker: Worker = {
      name,
      process: child,
      events: [],
      serving: new Set(),
      exited: new Promise((resolve) => child.once('exit', (code) => resolve(code))),
    };
    let buffered = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines) {
        if (!line.trim()) continue;
        const event = JSON.parse(line) as RunnerEvent;
        worker.events.push(event);
        if (event.type === 'sandbox.ready') worker.serving.add(event.sessionId);
        if (event.type === 'work.stopped' || event.type === 'work.handed-over') {
          worker.serving.delete(event.sessionId);
        }
      }
    });
    this.workers.push(worker);
    return worker;
  }

  /** The live worker serving the session now, once one is. */
  async servingWorker(sessionId: string, timeoutMs = 30_000): Promise<Worker> {
    return until(
      () => this.workers.find((worker) => worker.process.exitCode === null && worker.serving.has(sessionId)),
      timeoutMs,
    );
  }

  events(): RunnerEvent[] {
    return this.workers.flatMap((worker) => worker.events);
  }

  async stopAll(): Promise<void> {
    for (const worker of this.workers) {
      if (worker.process.exitCode === null && worker.process.signalCode === null)
        worker.process.kill('SIGTERM');
    }
    await Promise.all(
      this.workers.map((worker) =>
        Promise.race([
          worker.exited,
          new Promise((resolve) => setTimeout(resolve, 60_000)).then(() => worker.process.kill('SIGKILL')),
        ]),
      ),
    );
  }
}

export async function until<T>(
  probe: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 30_000,
  what = 'condition',
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`${what} not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

export async function waitForSuspended(statebox: Statebox, sessionIds: string[], timeoutMs: number) {
  await until(
    async () => {
      for (const sessionId of sessionIds) {
        const [box] = await statebox.list({ labels: { [SESSION_LABEL]: sessionId } });
        if (box?.status !== 'suspended') return false;
      }
      return true;
    },
    timeoutMs,
    'every sandbox suspended',
  );
}

/**
 * The call of the session tagged `tag` has started in its sandbox, and is not answered yet: a kill or
 * a lapsed lease now lands mid-call. Waits for it; false when the call was answered first.
 */
export async function inFlight(
  emulator: StateboxEmulator,
  statebox: Statebox,
  sessionId: string,
  tag: string,
): Promise<boolean> {
  await until(
    async () => {
      const [box] = await statebox.list({ labels: { [SESSION_LABEL]: sessionId } });
      if (box?.status !== 'running') return false;
      return (await box.exec(['grep', '-qx', tag, STARTED])).exitCode === 0;
    },
    30_000,
    `${tag} of ${sessionId} started`,
  );
  return !emulator.report(sessionId).steps.some((step) => step.content === tag);
}

/** What a session's sandbox log says: how many times each tag's command ran. */
export async function executions(statebox: Statebox, sessionId: string): Promise<Map<string, number>> {
  const [box] = await statebox.list({ labels: { [SESSION_LABEL]: sessionId } });
  if (!box) throw new Error(`no sandbox for ${sessionId}`);
  if (box.status === 'suspended') await box.resume();
  const log = await box.readFile(LOG, 'utf8').catch(() => '');
  const counts = new Map<string, number>();
  for (const tag of log.split('\n').filter(Boolean)) counts.set(tag, (counts.get(tag) ?? 0) + 1);
  return counts;
}

export type Tally = {
  sessions: number;
  toolCalls: number;
  /** Tool calls whose result was posted more than once. */
  duplicateResults: number;
  /** Tool calls never answered. */
  lostResults: number;
  /**
   * Calls seen started and unanswered just before their worker was SIGKILLed or lost its lease (each
   * must still run once and be answered with its own output, from the call journal).
   */
  callsInFlightAtLoss: number;
  /** Duplicate items that waited behind the item serving their session. */
  duplicateItemWaited: number;
};

/**
 * Every tool step of the session passed, was answered by exactly one accepted post (none rejected),
 * and no result says the sandbox was suspended. Returns the number of tool calls.
 */
export function expectExactlyOnce(emulator: StateboxEmulator, sessionId: string, tally: Tally): void {
  const report = emulator.report(sessionId);
  const tools = report.steps.filter((step) => step.type === 'tool_use');
  tally.sessions++;
  tally.toolCalls += tools.length;
  tally.duplicateResults += Object.values(report.answers).filter((count) => count > 1).length;
  tally.lostResults += tools.filter((step) => step.unanswered).length;
  expect(
    tools.filter((step) => /suspended/i.test(step.content ?? '')),
    `${sessionId}: a tool failed because its sandbox was suspended`,
  ).toEqual([]);
  expect(report.rejectedAnswers, `${sessionId}: rejected (duplicate) posts`).toEqual([]);
  expect(Object.values(report.answers).every((count) => count === 1)).toBe(true);
  expect(Object.keys(report.acceptedAnswers).length).toBe(tools.length);
  expect(
    report.steps.filter((step) => !step.pass).map((step) => `${step.name} ${step.reason}`),
    `${sessionId}: failed steps`,
  ).toEqual([]);
  expect(report.passed).toBe(true);
}

/**
 * Every tag a session's calls wrote appears once in its log, a call in flight when its worker was
 * killed or lost its lease included.
 */
export function expectRanOnce(counts: Map<string, number>, tags: string[]): void {
  for (const tag of tags) {
    const count = counts.get(tag) ?? 0;
    expect(count, `${tag} ran ${count} times`).toBe(1);
  }
}

export function tagsOf(name: string, count: number): string[] {
  return Array.from({ length: count }, (_, index) => `${name}-${index + 1}`);
}

export { FORK_FROM_METADATA };

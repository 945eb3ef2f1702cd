import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BetaRunnableTool } from '@anthropic-ai/sdk/lib/tools/BetaRunnableTool';
import { ToolError } from '@anthropic-ai/sdk/lib/tools/ToolError';
import { createStatebox, type Sandbox, type Statebox } from '@statebox/core';
import { local } from '@statebox/local';
import { type StateboxEmulator, startEmulator, type Transcript } from '@statebox/managed-agents-emulator';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SESSION_LABEL } from '../src/index.js';
import { createToolset, JOURNAL_KEEP, PRUNE_EVERY } from '../src/tools/index.js';

// A tool call takes effect once in the sandbox, whichever worker runs it how many times: the call's
// journal entry (src/tools/journal.ts) answers every attempt after the first.

const home = mkdtempSync(join(tmpdir(), 'statebox-once-'));
const fixtures = join(import.meta.dirname, 'fixtures');
let statebox: Statebox;
let box: Sandbox;
const processes: ChildProcess[] = [];

type Outcome = { ok: boolean; text: string };

/** Runs a tool as `SessionToolRunner` does: with the call's `tool_use` in the context. */
async function attempt(
  tools: BetaRunnableTool[],
  name: string,
  input: unknown,
  id: string,
  signal?: AbortSignal,
): Promise<Outcome> {
  const tool = tools.find((candidate) => candidate.name === name)!;
  const toolUse = { type: 'tool_use', id, name, input } as never;
  try {
    const text = await tool.run(tool.parse(input), {
      toolUse,
      toolUseBlock: toolUse,
      ...(signal && { signal }),
    } as never);
    return { ok: true, text: String(text) };
  } catch (error) {
    if (error instanceof ToolError) return { ok: false, text: String(error.content) };
    throw error;
  }
}

function toolset(sessionId: string, sandbox: Sandbox = box): BetaRunnableTool[] {
  return createToolset({ sandbox, sessionId });
}

/** How many lines of `path` in the sandbox read `line`. */
async function linesOf(path: string, line: string, sandbox: Sandbox = box): Promise<number> {
  const text = await sandbox.readFile(path, 'utf8').catch(() => '');
  return text.split('\n').filter((candidate) => candidate === line).length;
}

async function until<T>(probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function claimed(session: string, call: string, sandbox: Sandbox = box): Promise<boolean> {
  const path = `/root/.statebox/calls/${session}/${call}`;
  const result = await sandbox.exec(['/bin/sh', '-c', 'test -e "$1" || test -e "$1.rec"', 'sh', path]);
  return result.exitCode === 0;
}

beforeAll(async () => {
  statebox = createStatebox({ provider: local({ home }) });
  box = await statebox.create();
});

afterEach(() => {
  for (const child of processes.splice(0)) child.kill('SIGKILL');
});

afterAll(async () => {
  for (const sandbox of await statebox.list()) await sandbox.destroy().catch(() => undefined);
  rmSync(home, { recursive: true, force: true });
});

describe('the call journal (local provider)', () => {
  it('a bash call asked again by its tool_use id answers from its record and does not run again', async () => {
    const tools = toolset('again');
    const input = { command: 'echo ran >> /workspace/again.log; echo "output $((6 * 7))"; (exit 3)' };
    const first = await attempt(tools, 'bash', input, 'toolu_again1');
    expect(first).toEqual({ ok: false, text: 'output 42' });
    // A new toolset is what a new worker process has: nothing in memory.
    expect(await attempt(toolset('again'), 'bash', input, 'toolu_again1')).toEqual(first);
    expect(await linesOf('/workspace/again.log', 'ran')).toBe(1);
    // Another id is another call, and runs.
    expect(await attempt(tools, 'bash', input, 'toolu_again2')).toEqual(first);
    expect(await linesOf('/workspace/again.log', 'ran')).toBe(2);
    // The journal's functions stay out of the session's shell.
    expect(
      await attempt(
        tools,
        'bash',
        { command: "declare -F | grep -cE '__sb_(start|claim|await|commit|record|prune)'" },
        'toolu_again3',
      ),
    ).toEqual({
      ok: false,
      text: '0',
    });
    // A call without an id (outside a session runner) is not journaled.
    await attempt(tools, 'bash', { command: 'echo ran >> /workspace/again.log' }, '');
    await attempt(tools, 'bash', { command: 'echo ran >> /workspace/again.log' }, '');
    expect(await linesOf('/workspace/again.log', 'ran')).toBe(4);
  });

  it('an answer past the output cap is recorded as returned', async () => {
    const tools = toolset('big');
    const input = {
      command: 'echo ran >> /workspace/big.log; head -c 300000 /dev/zero | tr "\\0" a; echo; echo end',
    };
    const first = await attempt(tools, 'bash', input, 'toolu_big');
    expect(first.ok).toBe(true);
    expect(first.text.startsWith('[output truncated]\n')).toBe(true);
    expect(first.text.endsWith('a\nend')).toBe(true);
    expect(await attempt(toolset('big'), 'bash', input, 'toolu_big')).toEqual(first);
    expect(await linesOf('/workspace/big.log', 'ran')).toBe(1);
  });

  it('a hostile tool_use id never reaches a path: it is journaled under its hash', async () => {
    const tools = toolset('hostile');
    const id = '../../../workspace/escaped dir';
    const input = { command: 'echo ran >> /workspace/hostile.log; echo once' };
    expect(await attempt(tools, 'bash', input, id)).toEqual({ ok: true, text: 'once' });
    expect(await attempt(tools, 'bash', input, id)).toEqual({ ok: true, text: 'once' });
    expect(await linesOf('/workspace/hostile.log', 'ran')).toBe(1);
    const listing = await box.exec(['ls', '/root/.statebox/calls/hostile']);
    expect(listing.stdout.trim()).toMatch(/^h-[0-9a-f]{40}\.rec$/);
    expect((await box.exec(['ls', '-A', '/workspace'])).stdout).not.toContain('escaped');
  });

  it('an edit asked again after it took effect answers "edited", not "old_string not found"', async () => {
    await box.writeFile('/workspace/edit.txt', 'colour: red\n');
    const input = { file_path: 'edit.txt', old_string: 'red', new_string: 'red and blue' };
    const first = await attempt(toolset('edit'), 'edit', input, 'toolu_edit1');
    expect(first).toEqual({ ok: true, text: 'edited edit.txt (1 replacement(s))' });
    expect(await attempt(toolset('edit'), 'edit', input, 'toolu_edit1')).toEqual(first);
    expect(await box.readFile('/workspace/edit.txt', 'utf8')).toBe('colour: red and blue\n');
    // A new call with the same input is applied again, as it should be.
    expect(await attempt(toolset('edit'), 'edit', input, 'toolu_edit2')).toEqual(first);
    expect(await box.readFile('/workspace/edit.txt', 'utf8')).toBe('colour: red and blue and blue\n');
    // An edit that failed changed nothing and left no claim: asked again, it runs (and fails) again.
    const missing = { file_path: 'edit.txt', old_string: 'green', new_string: 'x' };
    expect(await attempt(toolset('edit'), 'edit', missing, 'toolu_edit3')).toEqual({
      ok: false,
      text: 'edit: old_string not found in edit.txt',
    });
    await box.writeFile('/workspace/edit.txt', 'green\n');
    expect(await attempt(toolset('edit'), 'edit', missing, 'toolu_edit3')).toEqual({
      ok: true,
      text: 'edited edit.txt (1 replacement(s))',
    });
  });

  it('a caller that stops waiting (its lease was lost) leaves the command to finish; the next attempt gets its output', async () => {
    const tools = toolset('lease');
    const input = {
      command:
        'echo started >> /workspace/lease.log; sleep 2; echo ran >> /workspace/lease.log; echo real output',
    };
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error('the lease was lost')), 300);
    expect(await attempt(tools, 'bash', input, 'toolu_lease', controller.signal)).toEqual({
      ok: false,
      text: 'bash: the lease was lost',
    });
    // The same process asks again (it claimed the session again): the call is still running.
    expect(await attempt(toolset('lease'), 'bash', input, 'toolu_lease')).toEqual({
      ok: true,
      text: 'real output',
    });
    // Not ended by the abort and run again: started once, finished once.
    expect(await linesOf('/workspace/lease.log', 'started')).toBe(1);
    expect(await linesOf('/workspace/lease.log', 'ran')).toBe(1);
  });

  it('a worker SIGKILLed mid-call: the next attempt waits for the command still running and answers with its output', async () => {
    const input = { command: 'sleep 2; echo ran >> /workspace/killed.log; echo real output' };
    const child = spawn(
      process.execPath,
      [
        join(fixtures, 'tool-call.mjs'),
        home,
        box.id,
        'killed',
        'toolu_killed',
        'bash',
        JSON.stringify(input),
      ],
      { cwd: join(import.meta.dirname, '..'), stdio: ['ignore', 'pipe', 'inherit'] },
    );
    processes.push(child);
    const exited = new Promise((resolve) => child.once('exit', resolve));
    await until(() => claimed('killed', 'toolu_killed'));
    child.kill('SIGKILL');
    await exited;
    expect(await attempt(toolset('killed'), 'bash', input, 'toolu_killed')).toEqual({
      ok: true,
      text: 'real output',
    });
    expect(await linesOf('/workspace/killed.log', 'ran')).toBe(1);
  });

  it('a call whose process is gone without a record (suspended mid-call) is answered "interrupted, effect unknown", not run again', async () => {
    const sandbox = await statebox.create();
    const input = { command: 'sleep 3; echo ran >> /workspace/cut.log' };
    const cut = attempt(toolset('cut', sandbox), 'bash', input, 'toolu_cut');
    await until(() => claimed('cut', 'toolu_cut', sandbox));
    await sandbox.suspend();
    // The suspend ended the command: its caller learns it however the provider reports it.
    await cut.catch(() => undefined);
    await sandbox.resume();
    const again = await attempt(toolset('cut', sandbox), 'bash', input, 'toolu_cut');
    expect(again.ok).toBe(false);
    expect(again.text).toContain('interrupted and its effect is unknown');
    expect(again.text).toContain('It was not run again');
    await new Promise((resolve) => setTimeout(resolve, 3500));
    expect(await linesOf('/workspace/cut.log', 'ran', sandbox)).toBe(0);
    await sandbox.destroy();
  });

  it('a call that timed out is answered "timed out" when asked again, not run again', async () => {
    const tools = toolset('timeout');
    const input = { command: 'echo ran >> /workspace/timeout.log; sleep 30', timeout_ms: 700 };
    const first = await attempt(tools, 'bash', input, 'toolu_timeout');
    expect(first).toEqual({ ok: false, text: 'bash: bash command timed out after 700ms' });
    expect(await attempt(toolset('timeout'), 'bash', input, 'toolu_timeout')).toEqual(first);
    expect(await linesOf('/workspace/timeout.log', 'ran')).toBe(1);
  });

  it(`keeps the newest ${JOURNAL_KEEP} calls of a session, pruned at one claim in ${PRUNE_EVERY}`, async () => {
    const tools = toolset('prune');
    const journal = '/root/.statebox/calls/prune';
    await attempt(tools, 'bash', { command: 'true' }, 'toolu_prune_first');
    // Older calls, as a long session leaves them (claims and records, mtimes in the past, oldest first).
    await box.exec([
      '/bin/bash',
      '-c',
      `cd ${journal} && for i in $(seq 1 300); do touch -d "@$((1700000000 + i))" old$i.rec; done`,
    ]);
    const claims = async () =>
      (await box.exec(['/bin/bash', '-c', `cd ${journal} && ls`])).stdout
        .trim()
        .split('\n')
        .map((name) => name.replace(/\.rec$/, ''));
    // A prune runs at one claim in PRUNE_EVERY, at random: none in the last 384 claims has a probability
    // under 10^-5, none in the last 300 under 10^-4.
    const calls = 20 * PRUNE_EVERY;
    let most = 0;
    for (let index = 1; index <= calls; index++) {
      const id = `toolu_prune${index}`;
      expect(await attempt(tools, 'bash', { command: `echo ${index}` }, id)).toEqual({
        ok: true,
        text: String(index),
      });
      if (index % PRUNE_EVERY === 0) most = Math.max(most, (await claims()).length);
    }
    const kept = await claims();
    // Bounded (unpruned, the seeded 301 plus the calls would be 941), the newest kept, the oldest gone.
    expect(most).toBeLessThanOrEqual(JOURNAL_KEEP + 300);
    expect(kept.length).toBeLessThanOrEqual(JOURNAL_KEEP + 300);
    expect(kept).toContain(`toolu_prune${calls}`);
    expect(kept).not.toContain('old1');
    expect(kept).not.toContain('toolu_prune_first');
    // Nothing but records is left of finished calls.
    expect(new Set(kept).size).toBe(kept.length);
  });
});

// The whole path: a worker process SIGKILLed while a call runs, the item re-delivered to a new worker
// after the lease TTL, the SDK's reconcile asking for the call again.
describe('runner: a worker SIGKILLed mid-call', () => {
  let emulator: StateboxEmulator;
  const once = (name: string, seconds: number): Transcript => ({
    name,
    match: `^${name}`,
    steps: [
      { type: 'tool_use', name: 'bash', input: { command: 'echo first' }, expect: { equals: 'first' } },
      {
        type: 'tool_use',
        name: 'bash',
        input: { command: `sleep ${seconds}; echo ran >> /workspace/f; echo "ran after ${seconds} s"` },
        expect: { equals: `ran after ${seconds} s` },
      },
      { type: 'tool_use', name: 'bash', input: { command: 'cat /workspace/f' }, expect: { equals: 'ran' } },
    ],
  });

  beforeAll(async () => {
    emulator = await startEmulator({ leaseTtlSeconds: 3, transcripts: [once('short', 2), once('long', 7)] });
  });
  afterAll(async () => {
    await emulator?.close();
  });

  function spawnWorker(environment: { id: string; environmentKey: string }): ChildProcess {
    const child = spawn(
      process.execPath,
      [join(fixtures, 'worker-process.mjs'), emulator.url, environment.id, environment.environmentKey, home],
      { cwd: join(import.meta.dirname, '..'), stdio: ['ignore', 'pipe', 'inherit'] },
    );
    processes.push(child);
    return child;
  }

  async function killMidCall(name: 'short' | 'long'): Promise<void> {
    const environment = emulator.createEnvironment(`sigkill-${name}`);
    const first = spawnWorker(environment);
    const sessionId = emulator.createSession({ environmentId: environment.id, message: name });
    // When the first call is answered, the runner starts the second (the sleep) within milliseconds.
    await until(() => emulator.report(sessionId).steps.length >= 1);
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(emulator.report(sessionId).steps.length).toBe(1);
    first.kill('SIGKILL');
    spawnWorker(environment);
    const report = await emulator.waitForTurns(sessionId, 1, 90_000);
    expect(report.steps.map((step) => [step.content, step.reason])).toEqual([
      ['first', undefined],
      [name === 'short' ? 'ran after 2 s' : 'ran after 7 s', undefined],
      ['ran', undefined],
    ]);
    expect(report.passed).toBe(true);
    expect(report.rejectedAnswers).toEqual([]);
    expect(report.workItems.reduce((claims, item) => claims + item.claims, 0)).toBeGreaterThanOrEqual(2);
    const [sandbox] = await statebox.list({ labels: { [SESSION_LABEL]: sessionId } });
    if (sandbox!.status === 'suspended') await sandbox!.resume();
    expect(await linesOf('/workspace/f', 'ran', sandbox)).toBe(1);
  }

  it('`sleep 2; echo ran >> f` in flight: the line is written once and the call answered with its output', async () => {
    await killMidCall('short');
  }, 120_000);

  it('a call still running when the next worker takes over: it waits for it and answers with its output', async () => {
    await killMidCall('long');
  }, 120_000);
});

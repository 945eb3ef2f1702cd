import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createStatebox, ProviderError, type Sandbox, type Statebox, TransientError } from '@statebox/core';
import { local } from '@statebox/local';
import { type StateboxEmulator, startEmulator, type Transcript } from '@statebox/managed-agents-emulator';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FORK_FROM_METADATA, type Runner, type RunnerEvent, SESSION_LABEL } from '../src/index.js';
import { startTestRunner } from './fixtures/runner.js';

const home = mkdtempSync(join(tmpdir(), 'statebox-runner-'));
let emulator: StateboxEmulator;
let statebox: Statebox;
const runners: Runner[] = [];
const processes: ChildProcess[] = [];

const evening: Transcript = {
  name: 'evening',
  match: '^evening',
  steps: [
    { type: 'thinking' },
    {
      type: 'tool_use',
      name: 'bash',
      input: {
        command: 'mkdir -p /workspace/project && cd /workspace/project && export TICKET=T-7 && echo started',
      },
      expect: { equals: 'started' },
    },
    {
      type: 'tool_use',
      name: 'write',
      input: { file_path: '/workspace/project/notes.md', content: 'evening notes\n' },
      expect: { contains: 'wrote 14 bytes' },
    },
    { type: 'message', text: 'done for today' },
  ],
};

const morning: Transcript = {
  name: 'morning',
  match: '^morning',
  steps: [
    {
      type: 'tool_use',
      name: 'bash',
      input: { command: 'pwd; echo $TICKET' },
      expect: { equals: '/workspace/project\nT-7' },
    },
    {
      type: 'tool_use',
      name: 'read',
      input: { file_path: '/workspace/project/notes.md' },
      expect: { equals: 'evening notes\n' },
    },
  ],
};

const branch: Transcript = {
  name: 'branch',
  match: '^branch',
  steps: [
    {
      type: 'tool_use',
      name: 'bash',
      input: { command: 'pwd; echo $TICKET; cat notes.md' },
      expect: { equals: '/workspace/project\nT-7\nevening notes' },
    },
    {
      type: 'tool_use',
      name: 'bash',
      input: { command: 'echo branch-only > branch.txt && ls' },
      expect: { equals: 'branch.txt\nnotes.md' },
    },
  ],
};

const slow: Transcript = {
  name: 'slow',
  match: '^slow',
  steps: [
    {
      type: 'tool_use',
      name: 'bash',
      input: { command: 'echo one >> /workspace/log.txt; echo one' },
      expect: { equals: 'one' },
    },
    {
      type: 'tool_use',
      name: 'bash',
      input: { command: 'sleep 2; echo two >> /workspace/log.txt; echo two' },
      expect: { equals: 'two' },
    },
    {
      type: 'tool_use',
      name: 'bash',
      input: { command: 'echo three >> /workspace/log.txt; sort -u /workspace/log.txt | xargs' },
      expect: { equals: 'one three two' },
    },
  ],
};

const custom: Transcript = {
  name: 'custom',
  match: '^custom',
  steps: [
    { type: 'tool_use', name: 'lookup', custom: true, input: { key: 'answer' }, expect: { equals: '42' } },
    { type: 'tool_use', name: 'bash', input: { command: 'echo after' }, expect: { equals: 'after' } },
  ],
};

const skillsAndMemory: Transcript = {
  name: 'skills-and-memory',
  match: '^skills',
  steps: [
    {
      type: 'tool_use',
      name: 'bash',
      input: {
        command: 'cat /workspace/skills/csv-tools/SKILL.md; /workspace/skills/csv-tools/bin/count.sh',
      },
      expect: { equals: '# CSV tools\ncounted' },
    },
    {
      type: 'tool_use',
      name: 'read',
      input: { file_path: '/mnt/memory/team-notes/preferences.md' },
      expect: { equals: 'use tabs' },
    },
    {
      type: 'tool_use',
      name: 'write',
      input: { file_path: '/mnt/memory/team-notes/learned.md', content: 'the build needs node 22' },
      expect: { contains: 'wrote' },
    },
    {
      type: 'tool_use',
      name: 'edit',
      input: {
        file_path: '/mnt/memory/team-notes/preferences.md',
        old_string: 'tabs',
        new_string: 'two spaces',
      },
      expect: { contains: 'edited' },
    },
  ],
};

beforeAll(async () => {
  emulator = await startEmulator({
    transcripts: [evening, morning, branch, slow, custom, skillsAndMemory],
    leaseTtlSeconds: 3,
  });
  statebox = createStatebox({ provider: local({ home }) });
});

afterEach(async () => {
  await Promise.all(runners.splice(0).map((runner) => runner.shutdown()));
  for (const child of processes.splice(0)) child.kill('SIGKILL');
});

afterAll(async () => {
  for (const box of await statebox.list()) await box.destroy();
  await emulator.close();
  rmSync(home, { recursive: true, force: true });
});

function startRunner(
  environment: { id: string; environmentKey: string },
  events: RunnerEvent[] = [],
  options = {},
) {
  const runner = startTestRunner(emulator, environment, statebox, {
    onEvent: (event) => events.push(event),
    ...options,
  });
  runners.push(runner);
  return runner;
}

async function sandboxOf(sessionId: string): Promise<Sandbox> {
  const [box] = await statebox.list({ labels: { [SESSION_LABEL]: sessionId } });
  if (!box) throw new Error(`no sandbox for ${sessionId}`);
  return box;
}

async function until<T>(probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function expectAnsweredOnce(sessionId: string): void {
  const report = emulator.report(sessionId);
  expect(report.rejectedAnswers).toEqual([]);
  for (const count of Object.values(report.acceptedAnswers)) expect(count).toBe(1);
  expect(Object.keys(report.acceptedAnswers).length).toBe(
    report.steps.filter((step) => step.type === 'tool_use').length,
  );
}

/** The local provider, whose `create` fails the next `failures` times with the error `fail` makes. */
function failingCreates(failures: number, fail: () => Error) {
  const provider = local({ home });
  let left = failures;
  return new Proxy(provider, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver);
      if (property !== 'create') return typeof value === 'function' ? value.bind(target) : value;
      return (...args: unknown[]) => {
        if (left-- > 0) return Promise.reject(fail());
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

describe('runner on the local provider', () => {
  it('creates, suspends when idle, resumes with the shell intact, and forks a branching session', async () => {
    const environment = emulator.createEnvironment('lifecycle');
    const events: RunnerEvent[] = [];
    startRunner(environment, events);
    const sessionId = emulator.createSession({ environmentId: environment.id, message: 'evening work' });
    expect((await emulator.waitForTurns(sessionId, 1)).passed).toBe(true);
    await until(async () => (await sandboxOf(sessionId)).status === 'suspended');

    emulator.sendMessage(sessionId, 'morning check');
    const report = await emulator.waitForTurns(sessionId, 2);
    expect(report.steps.map((step) => [step.content, step.reason])).toEqual(
      report.steps.map((step) => [step.content, undefined]),
    );
    expect(report.passed).toBe(true);
    expect(
      events.filter((event) => event.type === 'sandbox.ready').map((event) => 'how' in event && event.how),
    ).toEqual(['created', 'resumed']);

    const child = emulator.createSession({
      environmentId: environment.id,
      metadata: { [FORK_FROM_METADATA]: sessionId },
      message: 'branch off',
    });
    expect((await emulator.waitForTurns(child, 1)).passed).toBe(true);
    const parentBox = await sandboxOf(sessionId);
    if (parentBox.status === 'suspended') await parentBox.resume();
    expect((await parentBox.exec('ls', { cwd: '/workspace/project' })).stdout).toBe('notes.md\n');
    expect((await sandboxOf(child)).info.parentId).toBe(parentBox.id);
    expectAnsweredOnce(sessionId);
    expectAnsweredOnce(child);
  });

  it('retries preparing a sandbox after a TransientError and serves the turn', async () => {
    const environment = emulator.createEnvironment('transient');
    const events: RunnerEvent[] = [];
    const flaky = createStatebox({
      provider: failingCreates(2, () => new TransientError('the backend is busy (injected)')),
    });
    runners.push(startTestRunner(emulator, environment, flaky, { onEvent: (event) => events.push(event) }));
    const sessionId = emulator.createSession({ environmentId: environment.id, message: 'evening work' });
    expect((await emulator.waitForTurns(sessionId, 1)).passed).toBe(true);
    const retries = events.filter((event) => event.type === 'sandbox.retrying');
    expect(retries.map((event) => 'attempt' in event && event.attempt)).toEqual([1, 2]);
    expect(events.some((event) => event.type === 'sandbox.ready' && event.how === 'created')).toBe(true);
    expectAnsweredOnce(sessionId);
  }, 60_000);

  it('a sandbox that cannot be prepared answers the turn with the reason instead of leaving it waiting', async () => {
    const environment = emulator.createEnvironment('unpreparable');
    const events: RunnerEvent[] = [];
    const broken = createStatebox({
      provider: failingCreates(1, () => new ProviderError('local', 'the disk is full (injected)')),
    });
    runners.push(startTestRunner(emulator, environment, broken, { onEvent: (event) => events.push(event) }));
    const sessionId = emulator.createSession({ environmentId: environment.id, message: 'evening work' });
    const report = await emulator.waitForTurns(sessionId, 1);
    const answered = report.steps.filter((step) => step.type === 'tool_use');
    expect(answered.length).toBeGreaterThan(0);
    for (const step of answered) {
      expect(step).toMatchObject({ isError: true });
      expect(step.content).toContain('the disk is full (injected)');
      expect(step.content).toContain('send another message to try again');
    }
    expect(events.some((event) => event.type === 'sandbox.retrying')).toBe(false);
    expectAnsweredOnce(sessionId);
    // The next message, once this item has stopped, tries again, and the provider works now.
    await until(() => events.some((event) => event.type === 'work.stopped'));
    emulator.sendMessage(sessionId, 'evening work again');
    expect(
      (await emulator.waitForTurns(sessionId, 2)).steps.some(
        (step) => step.type === 'tool_use' && !step.isError,
      ),
    ).toBe(true);
  }, 60_000);

  it('destroys the sandbox of a session archived while it is served', async () => {
    const environment = emulator.createEnvironment('archive');
    const events: RunnerEvent[] = [];
    startRunner(environment, events, { idleMs: 60_000 });
    const sessionId = emulator.createSession({ environmentId: environment.id, message: 'evening work' });
    await emulator.waitForTurns(sessionId, 1);
    const box = await until(() => sandboxOf(sessionId).catch(() => undefined));
    const client = new (await import('@anthropic-ai/sdk')).default({
      apiKey: emulator.apiKey,
      baseURL: emulator.url,
    });
    await client.beta.sessions.archive(sessionId);
    await until(() => events.some((event) => event.type === 'sandbox.destroyed'));
    await expect(statebox.get(box.id)).rejects.toThrow(/not found/);
  });

  it('answers a custom tool with user.custom_tool_result, each result posted exactly once', async () => {
    const environment = emulator.createEnvironment('custom');
    startRunner(environment, [], {
      customTools: () => [
        {
          type: 'custom',
          name: 'lookup',
          description: 'look a key up',
          input_schema: { type: 'object', properties: { key: { type: 'string' } } },
          parse: (input: unknown) => input as { key: string },
          run: () => '42',
        },
      ],
    });
    const sessionId = emulator.createSession({ environmentId: environment.id, message: 'custom call' });
    const report = await emulator.waitForTurns(sessionId, 1);
    expect(report.passed).toBe(true);
    expect(report.steps[0]?.custom).toBe(true);
    expectAnsweredOnce(sessionId);
  });

  it('reconnects after a dropped event stream and survives failed sends without double answers', async () => {
    const environment = emulator.createEnvironment('faults');
    startRunner(environment);
    const sessionId = emulator.createSession({ environmentId: environment.id, message: 'slow work' });
    await until(() => emulator.report(sessionId).steps.length >= 2);
    emulator.faults.dropStreams(sessionId);
    emulator.faults.failSends(sessionId, 2, 500);
    const report = await emulator.waitForTurns(sessionId, 1);
    expect(report.passed).toBe(true);
    expectAnsweredOnce(sessionId);
  });

  it('keeps polling through empty polls (204) and claims work when it arrives', async () => {
    const environment = emulator.createEnvironment('empty');
    startRunner(environment);
    await until(() =>
      emulator.requests.some(
        (request) => request.path.endsWith(`${environment.id}/work/poll`) && request.status === 204,
      ),
    );
    const sessionId = emulator.createSession({ environmentId: environment.id, message: 'evening work' });
    expect((await emulator.waitForTurns(sessionId, 1)).passed).toBe(true);
  });

  it('stops touching a session whose lease was taken (412): no suspend, no stop', async () => {
    const environment = emulator.createEnvironment('lease');
    const events: RunnerEvent[] = [];
    startRunner(environment, events);
    const sessionId = emulator.createSession({ environmentId: environment.id, message: 'slow work' });
    const claimed = await until(() => events.find((event) => event.type === 'work.claimed'));
    const workId = 'workId' in claimed ? claimed.workId : '';
    emulator.faults.stealLease(workId);
    await until(() => events.find((event) => event.type === 'lease.ended'), 10_000);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const stops = emulator.requests.filter((request) => request.path.endsWith(`/work/${workId}/stop`));
    expect(stops).toEqual([]);
    expect(events.some((event) => event.type === 'sandbox.suspended' && event.sessionId === sessionId)).toBe(
      false,
    );
    expect(events.find((event) => event.type === 'lease.ended')).toMatchObject({ end: 'lost' });
  });

  it('a runner killed with SIGKILL mid-call is replaced: the new one reclaims the work and finishes, nothing lost or doubled', async () => {
    const environment = emulator.createEnvironment('sigkill');
    const fixture = join(import.meta.dirname, 'fixtures', 'worker-process.mjs');
    const spawnWorker = () => {
      const child = spawn(
        process.execPath,
        [fixture, emulator.url, environment.id, environment.environmentKey, home],
        {
          cwd: join(import.meta.dirname, '..'),
          stdio: ['ignore', 'pipe', 'inherit'],
        },
      );
      processes.push(child);
      return child;
    };
    const first = spawnWorker();
    const sessionId = emulator.createSession({ environmentId: environment.id, message: 'slow work' });
    // The report lists a step once it is answered: when the first is, the runner picks up the second
    // (`sleep 2`) within milliseconds, so a kill 300 ms later lands inside it.
    await until(() => emulator.report(sessionId).steps.length >= 1, 20_000);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(emulator.report(sessionId).steps.length).toBe(1);
    first.kill('SIGKILL');
    spawnWorker();
    const report = await emulator.waitForTurns(sessionId, 1, 60_000);
    expect(report.passed).toBe(true);
    expectAnsweredOnce(sessionId);
    expect(report.workItems.length).toBeGreaterThanOrEqual(1);
    expect(report.workItems.reduce((claims, item) => claims + item.claims, 0)).toBeGreaterThanOrEqual(2);
  });

  it("installs the agent's skills in the sandbox and syncs a memory store both ways", async () => {
    const environment = emulator.createEnvironment('skills');
    emulator.addSkill({
      id: 'skill_csv',
      name: 'csv-tools',
      files: {
        'SKILL.md': '# CSV tools\n',
        'bin/count.sh': { content: '#!/bin/sh\necho counted\n', mode: 0o755 },
      },
    });
    const agentId = emulator.createAgent({
      name: 'with-skills',
      skills: [{ type: 'custom', skill_id: 'skill_csv', version: 'latest' }],
    });
    const storeId = emulator.createMemoryStore({
      name: 'Team notes',
      memories: { '/preferences.md': 'use tabs' },
    });
    const events: RunnerEvent[] = [];
    startRunner(environment, events);
    const sessionId = emulator.createSession({
      environmentId: environment.id,
      agentId,
      resources: [{ type: 'memory_store', memory_store_id: storeId }],
      message: 'skills and memory',
    });
    const report = await emulator.waitForTurns(sessionId, 1);
    expect(report.steps.map((step) => step.reason)).toEqual(report.steps.map(() => undefined));
    // The final sync runs when the runner releases the session.
    await until(() => events.some((event) => event.type === 'work.stopped'));
    expect(emulator.memories(storeId)).toEqual({
      '/preferences.md': 'use two spaces',
      '/learned.md': 'the build needs node 22',
    });
    expect(events.find((event) => event.type === 'skills.installed')).toMatchObject({
      skills: ['/workspace/skills/csv-tools'],
    });
  });

  it('serves several sessions at once', async () => {
    const environment = emulator.createEnvironment('concurrent');
    startRunner(environment, [], { concurrency: 5 });
    const sessions = Array.from({ length: 5 }, () =>
      emulator.createSession({ environmentId: environment.id, message: 'evening work' }),
    );
    const reports = await Promise.all(
      sessions.map((sessionId) => emulator.waitForTurns(sessionId, 1, 60_000)),
    );
    expect(reports.map((report) => report.passed)).toEqual(sessions.map(() => true));
    const boxes = await Promise.all(sessions.map(sandboxOf));
    expect(new Set(boxes.map((box) => box.id)).size).toBe(5);
  });
});

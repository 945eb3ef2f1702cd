import { join } from 'node:path';
import { createProvider, createStatebox, type SandboxProvider } from '@statebox/core';
import { startEmulator, type Transcript } from '@statebox/managed-agents-emulator';
import { afterAll, describe, expect, it } from 'vitest';
import { FORK_FROM_METADATA, Runner, type RunnerEvent, SESSION_LABEL } from '../src/index.js';

// The runner's lifecycle on Daytona, chosen by configuration alone (`STATEBOX_PROVIDER=daytona`): without
// DAYTONA_API_KEY, @statebox/daytona starts its loopback emulator, and the real @daytonaio/sdk talks to it.
const reason =
  process.platform === 'linux'
    ? undefined
    : `the Daytona emulator backs its sandboxes with the local provider, which needs Linux (this is ${process.platform})`;
const required = (process.env.STATEBOX_REQUIRE ?? '').split(',').includes('daytona');

const transcripts: Transcript[] = [
  {
    name: 'evening',
    match: '^evening',
    steps: [
      {
        type: 'tool_use',
        name: 'bash',
        input: {
          command:
            'mkdir -p /workspace/p && cd /workspace/p && export TICKET=D-1 && git init -q . && echo ok',
        },
        expect: { equals: 'ok' },
      },
      {
        type: 'tool_use',
        name: 'write',
        input: { file_path: '/workspace/p/a.txt', content: 'a\n' },
        expect: { contains: 'wrote' },
      },
    ],
  },
  {
    name: 'morning',
    match: '^morning',
    steps: [
      {
        type: 'tool_use',
        name: 'bash',
        input: { command: 'pwd; echo $TICKET; cat a.txt' },
        expect: { equals: '/workspace/p\nD-1\na' },
      },
      {
        type: 'tool_use',
        name: 'grep',
        input: { pattern: '^a', path: '/workspace/p' },
        expect: { contains: 'a.txt:1:a' },
      },
    ],
  },
  {
    name: 'branch',
    match: '^branch',
    steps: [
      {
        type: 'tool_use',
        name: 'bash',
        input: { command: 'pwd; echo $TICKET; echo b > b.txt; ls' },
        expect: { equals: '/workspace/p\nD-1\na.txt\nb.txt' },
      },
    ],
  },
];

describe('runner on the daytona provider (STATEBOX_PROVIDER=daytona, emulator)', () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const step of cleanup.reverse()) await step();
  });

  it.skipIf(Boolean(reason) && !required)(
    `serves a session on Daytona: suspends when idle, resumes with the shell, forks a branch${reason ? ` (skipped: ${reason})` : ''}`,
    async () => {
      if (reason) throw new Error(`STATEBOX_REQUIRE names daytona, but: ${reason}`);
      // A generous lease: on a loaded 2-core machine a heartbeat can be late, and a lost lease is not what this tests.
      const emulator = await startEmulator({ transcripts, leaseTtlSeconds: 30 });
      cleanup.push(() => emulator.close());
      const provider: SandboxProvider = await createProvider(undefined, {
        env: { STATEBOX_PROVIDER: 'daytona' },
        cwd: join(import.meta.dirname, '..'),
      });
      expect(provider.name).toBe('daytona');
      const statebox = createStatebox({ provider });
      cleanup.push(async () => {
        for (const box of await statebox.list({ labels: { 'statebox.managed-by': 'statebox-runner' } })) {
          await box.destroy().catch(() => undefined);
        }
      });
      const events: RunnerEvent[] = [];
      const environment = emulator.createEnvironment('daytona');
      const runner = new Runner({
        baseURL: emulator.url,
        environmentId: environment.id,
        environmentKey: environment.environmentKey,
        statebox,
        idleMs: 500,
        pollBlockMs: 200,
        janitorIntervalMs: null,
        onEvent: (event) => {
          events.push(event);
          if (process.env.STATEBOX_DEBUG_RUNNER)
            process.stderr.write(`${JSON.stringify(event).slice(0, 300)}\n`);
        },
      });
      cleanup.push(() => runner.shutdown());
      void runner.run();

      const sessionId = emulator.createSession({ environmentId: environment.id, message: 'evening' });
      const evening = await emulator.waitForTurns(sessionId, 1, 90_000).catch((error: Error) => {
        throw new Error(`${error.message}; runner events: ${JSON.stringify(events).slice(0, 3000)}`);
      });
      expect(evening.passed).toBe(true);
      const deadline = Date.now() + 60_000;
      for (;;) {
        const [box] = await statebox.list({ labels: { [SESSION_LABEL]: sessionId } });
        // Daytona reads `stopping` as suspended already: wait for the runner to have let the work go too,
        // or the next message would reach a session whose work item is still held.
        const released = events.some((event) => event.type === 'work.stopped');
        if (box?.status === 'suspended' && released) break;
        if (Date.now() > deadline) throw new Error('the sandbox was not suspended after the session idled');
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      emulator.sendMessage(sessionId, 'morning');

      const morning = await emulator.waitForTurns(sessionId, 2, 90_000);
      expect(morning.steps.map((step) => step.reason)).toEqual(morning.steps.map(() => undefined));

      const child = emulator.createSession({
        environmentId: environment.id,
        metadata: { [FORK_FROM_METADATA]: sessionId },
        message: 'branch',
      });
      const branch = await emulator.waitForTurns(child, 1, 90_000);
      expect(branch.steps.map((step) => step.reason)).toEqual(branch.steps.map(() => undefined));
      for (const report of [morning, branch]) {
        for (const count of Object.values(report.acceptedAnswers)) expect(count).toBe(1);
      }
    },
    240_000,
  );
});

import { createFromConfig } from '@statebox/cloudflare';
import { localWorkerSkipReason } from '@statebox/cloudflare/testing';
import { createStatebox } from '@statebox/core';
import { startEmulator } from '@statebox/managed-agents-emulator';
import { afterAll, describe, expect, it } from 'vitest';
import { FORK_FROM_METADATA, Runner, SESSION_LABEL } from '../src/index.js';
import { transcripts } from './fixtures/lifecycle-transcripts.js';

// The provider comes from config as STATEBOX_PROVIDER=cloudflare would give it: with no
// STATEBOX_CLOUDFLARE_URL, @statebox/cloudflare starts its Worker in local workerd, with the sandboxes
// in Docker containers. The shell state lives in /root (linked into /home), which the backups cover.
const required = (process.env.STATEBOX_REQUIRE ?? '').split(',').includes('cloudflare');
const reason = await localWorkerSkipReason();

describe('runner on the cloudflare provider', () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const step of cleanup.reverse()) await step();
  }, 120_000);

  it.skipIf(Boolean(reason) && !required)(
    `serves a session on the local Worker: suspends when idle, resumes with the shell, forks a branch${reason ? ` (skipped: ${reason})` : ''}`,
    async () => {
      if (reason) throw new Error(`STATEBOX_REQUIRE names cloudflare, but: ${reason}`);
      const emulator = await startEmulator({ transcripts, leaseTtlSeconds: 5 });
      cleanup.push(() => emulator.close());
      const env: NodeJS.ProcessEnv = {
        ...process.env,
        STATEBOX_CLOUDFLARE_URL: '',
        STATEBOX_CLOUDFLARE_TOKEN: '',
      };
      const provider = await createFromConfig({}, env);
      const statebox = createStatebox({ provider });
      cleanup.push(async () => {
        for (const box of await statebox.list({ labels: { 'statebox.managed-by': 'statebox-runner' } })) {
          await box.destroy().catch(() => undefined);
        }
      });
      const environment = emulator.createEnvironment('cloudflare');
      const stopped = new Set<string>();
      const runner = new Runner({
        baseURL: emulator.url,
        environmentId: environment.id,
        environmentKey: environment.environmentKey,
        statebox,
        idleMs: 500,
        pollBlockMs: 200,
        janitorIntervalMs: null,
        onEvent: (event) => {
          // On stderr, so that a failure shows how far the runner got.
          process.stderr.write(`runner event: ${JSON.stringify(event).slice(0, 240)}\n`);
          if (event.type === 'work.stopped') stopped.add(event.sessionId);
        },
      });
      cleanup.push(() => runner.shutdown());
      void runner.run();

      const sessionId = emulator.createSession({ environmentId: environment.id, message: 'evening' });
      expect((await emulator.waitForTurns(sessionId, 1, 120_000)).passed).toBe(true);
      const deadline = Date.now() + 120_000;
      for (;;) {
        const [box] = await statebox.list({ labels: { [SESSION_LABEL]: sessionId } });
        // The registry says suspended before the container is released; the runner stops its work item
        // after that, and a message sent before then would reach the item being stopped.
        if (box?.status === 'suspended' && stopped.has(sessionId)) break;
        if (Date.now() > deadline) throw new Error('the sandbox was not suspended after the session idled');
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      emulator.sendMessage(sessionId, 'morning');
      const morning = await emulator.waitForTurns(sessionId, 2, 120_000);
      expect(morning.steps.map((step) => step.reason)).toEqual(morning.steps.map(() => undefined));

      const child = emulator.createSession({
        environmentId: environment.id,
        metadata: { [FORK_FROM_METADATA]: sessionId },
        message: 'branch',
      });
      const branch = await emulator.waitForTurns(child, 1, 120_000);
      expect(branch.steps.map((step) => step.reason)).toEqual(branch.steps.map(() => undefined));
      for (const report of [morning, branch]) {
        for (const count of Object.values(report.acceptedAnswers)) expect(count).toBe(1);
      }
    },
    400_000,
  );
});

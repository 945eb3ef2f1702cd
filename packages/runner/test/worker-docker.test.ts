import { execFileSync } from 'node:child_process';
import { createStatebox } from '@statebox/core';
import { docker } from '@statebox/docker';
import { startEmulator } from '@statebox/managed-agents-emulator';
import { afterAll, describe, expect, it } from 'vitest';
import { FORK_FROM_METADATA, Runner, SESSION_LABEL } from '../src/index.js';
import { transcripts } from './fixtures/lifecycle-transcripts.js';

// The toolset needs bash and GNU tools in the sandbox, so this runs on the Debian image that
// .ci/docker.sh builds (packages/docker/scripts/build-debian-image.sh).
const IMAGE = 'statebox/debian:bookworm';

function skipReason(): string | undefined {
  try {
    execFileSync('docker', ['image', 'inspect', IMAGE], { stdio: 'ignore' });
  } catch {
    return `no Docker daemon, or no ${IMAGE} image (build it with packages/docker/scripts/build-debian-image.sh)`;
  }
  return process.getuid?.() === 0
    ? undefined
    : 'the docker provider keeps its layers in a root-owned directory';
}

const required = (process.env.STATEBOX_REQUIRE ?? '').split(',').includes('docker');
const reason = skipReason();

describe('runner on the docker provider', () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const step of cleanup.reverse()) await step();
  });

  it.skipIf(Boolean(reason) && !required)(
    `serves a session on Docker: suspends when idle, resumes with the shell, forks a branch${reason ? ` (skipped: ${reason})` : ''}`,
    async () => {
      if (reason) throw new Error(`STATEBOX_REQUIRE names docker, but: ${reason}`);
      const emulator = await startEmulator({ transcripts, leaseTtlSeconds: 5 });
      cleanup.push(() => emulator.close());
      const provider = docker({ image: IMAGE });
      const statebox = createStatebox({ provider });
      cleanup.push(async () => {
        for (const box of await statebox.list({ labels: { 'statebox.managed-by': 'statebox-runner' } })) {
          await box.destroy().catch(() => undefined);
        }
        await provider.close();
      });
      const environment = emulator.createEnvironment('docker');
      const runner = new Runner({
        baseURL: emulator.url,
        environmentId: environment.id,
        environmentKey: environment.environmentKey,
        statebox,
        idleMs: 500,
        pollBlockMs: 200,
        janitorIntervalMs: null,
      });
      cleanup.push(() => runner.shutdown());
      void runner.run();

      const sessionId = emulator.createSession({ environmentId: environment.id, message: 'evening' });
      expect((await emulator.waitForTurns(sessionId, 1, 90_000)).passed).toBe(true);
      const deadline = Date.now() + 60_000;
      for (;;) {
        const [box] = await statebox.list({ labels: { [SESSION_LABEL]: sessionId } });
        if (box?.status === 'suspended') break;
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

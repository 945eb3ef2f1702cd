import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createProvider, createStatebox, type SandboxProvider } from '@statebox/core';
import { startEmulator } from '@statebox/managed-agents-emulator';
import { afterAll, describe, expect, it } from 'vitest';
import { FORK_FROM_METADATA, Runner, SESSION_LABEL } from '../src/index.js';
import { transcripts } from './fixtures/lifecycle-transcripts.js';

/**
 * The lifecycle scenario on the provider `STATEBOX_PROVIDER` names (default `tensorlake`), built from
 * the environment as a deployed runner builds it. With `tensorlake` and no `TENSORLAKE_API_KEY`, the
 * loopback Tensorlake emulator is started here and the test says so.
 */
const providerName = process.env.STATEBOX_PROVIDER?.trim() || 'tensorlake';
const packageDir = join(fileURLToPath(new URL('.', import.meta.url)), '..');

async function openProvider(): Promise<{ provider: SandboxProvider; close: () => Promise<void> }> {
  const env: NodeJS.ProcessEnv = { ...process.env, STATEBOX_PROVIDER: providerName };
  let close = async (): Promise<void> => undefined;
  if (providerName === 'tensorlake' && !env.TENSORLAKE_API_KEY?.trim()) {
    const { startEmulatedTensorlake } = await import('@statebox/tensorlake/testing');
    const emulated = await startEmulatedTensorlake();
    Object.assign(env, emulated.env);
    close = () => emulated.close();
    console.info(
      `no TENSORLAKE_API_KEY: the runner's provider is the loopback Tensorlake emulator at ${emulated.url}`,
    );
  }
  return { provider: await createProvider(undefined, { cwd: packageDir, env }), close };
}

describe(`runner on the provider STATEBOX_PROVIDER names (${providerName})`, () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const step of cleanup.reverse()) await step();
  });

  it('serves a session: suspends when idle, resumes with the shell, forks a branch', async () => {
    const emulator = await startEmulator({ transcripts, leaseTtlSeconds: 5 });
    cleanup.push(() => emulator.close());
    const { provider, close } = await openProvider();
    cleanup.push(close);
    const statebox = createStatebox({ provider });
    cleanup.push(async () => {
      for (const box of await statebox.list({ labels: { 'statebox.managed-by': 'statebox-runner' } })) {
        await box.destroy().catch(() => undefined);
      }
    });
    const environment = emulator.createEnvironment(providerName);
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
  }, 240_000);
});

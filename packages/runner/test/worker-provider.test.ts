import { join } from 'node:path';
import { createProvider } from '@statebox/core';
import { describeLifecycle } from './fixtures/lifecycle.js';

/**
 * The lifecycle scenario on the provider `STATEBOX_PROVIDER` names (default `tensorlake`), built from
 * the environment as a deployed runner builds it. With `tensorlake` and no `TENSORLAKE_API_KEY`, the
 * loopback Tensorlake emulator is started here and the test says so. Nothing is skipped.
 */
const providerName = process.env.STATEBOX_PROVIDER?.trim() || 'tensorlake';

describeLifecycle({
  name: providerName,
  suite: `runner on the provider STATEBOX_PROVIDER names (${providerName})`,
  test: 'serves a session: suspends when idle, resumes with the shell, forks a branch',
  open: async () => {
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
    return {
      provider: await createProvider(undefined, { cwd: join(import.meta.dirname, '..'), env }),
      close,
    };
  },
});

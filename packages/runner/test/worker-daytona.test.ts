import { join } from 'node:path';
import { createProvider } from '@statebox/core';
import { emulatorSkipReason } from '@statebox/daytona/testing';
import { describeLifecycle } from './fixtures/lifecycle.js';

// The runner's lifecycle on Daytona, chosen by configuration alone (`STATEBOX_PROVIDER=daytona`): without
// DAYTONA_API_KEY, @statebox/daytona starts its loopback emulator, and the real @daytonaio/sdk talks to it.
describeLifecycle({
  name: 'daytona',
  suite: 'runner on the daytona provider (STATEBOX_PROVIDER=daytona, emulator)',
  test: 'serves a session on Daytona: suspends when idle, resumes with the shell, forks a branch',
  skipReason: emulatorSkipReason(),
  // A generous lease: on a loaded 2-core machine a heartbeat can be late, and a lost lease is not what this tests.
  leaseTtlSeconds: 30,
  open: async () => ({
    provider: await createProvider(undefined, {
      env: { STATEBOX_PROVIDER: 'daytona' },
      cwd: join(import.meta.dirname, '..'),
    }),
  }),
});

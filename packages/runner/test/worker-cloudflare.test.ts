import { createFromConfig } from '@statebox/cloudflare';
import { localWorkerSkipReason } from '@statebox/cloudflare/testing';
import { describeLifecycle } from './fixtures/lifecycle.js';

// The provider comes from config as STATEBOX_PROVIDER=cloudflare would give it: with no
// STATEBOX_CLOUDFLARE_URL, @statebox/cloudflare starts its Worker in local workerd, with the sandboxes
// in Docker containers. The shell state lives in /root (linked into /home), which the backups cover.
describeLifecycle({
  name: 'cloudflare',
  suite: 'runner on the cloudflare provider',
  test: 'serves a session on the local Worker: suspends when idle, resumes with the shell, forks a branch',
  skipReason: await localWorkerSkipReason(),
  turnTimeoutMs: 120_000,
  suspendTimeoutMs: 120_000,
  testTimeoutMs: 400_000,
  cleanupTimeoutMs: 120_000,
  logEvents: true,
  open: async () => ({
    provider: await createFromConfig(
      {},
      { ...process.env, STATEBOX_CLOUDFLARE_URL: '', STATEBOX_CLOUDFLARE_TOKEN: '' },
    ),
  }),
});

import { runConformance } from '@statebox/core/testkit';
import { afterAll } from 'vitest';
import { CloudflareProvider } from '../src/index.js';
import { localWorkerSkipReason, startLocalWorker } from '../src/testing.js';

// The statebox Worker in local workerd (wrangler 4.164.0) with the real @cloudflare/sandbox Durable
// Object, a local R2 bucket and real Docker containers; the Node provider talks to it over HTTP.
const skip = await localWorkerSkipReason();
const worker = skip ? undefined : await startLocalWorker();
afterAll(() => worker?.stop(), 120_000);

runConformance({
  name: 'cloudflare',
  createProvider: () =>
    new CloudflareProvider({
      url: worker!.url,
      token: worker!.token,
      requestTimeoutMs: 60_000,
      lifecycleTimeoutMs: 300_000,
    }),
  skip,
  timeoutMs: 240_000,
});

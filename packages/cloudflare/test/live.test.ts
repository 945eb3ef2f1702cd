import { runConformance } from '@statebox/core/testkit';
import { cloudflare } from '../src/index.js';
import { liveSkipReason } from '../src/testing.js';

// Against a deployed statebox Worker: STATEBOX_LIVE=cloudflare STATEBOX_CLOUDFLARE_URL=… STATEBOX_CLOUDFLARE_TOKEN=…
runConformance({
  name: 'cloudflare-live',
  createProvider: () => cloudflare(),
  skip: liveSkipReason(),
  timeoutMs: 300_000,
});

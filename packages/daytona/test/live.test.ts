import { runConformance } from '@statebox/core/testkit';
import { daytona } from '../src/index.js';
import { liveSkipReason } from '../src/testing.js';

// Real Daytona: STATEBOX_LIVE=daytona with DAYTONA_API_KEY (and DAYTONA_API_URL/DAYTONA_TARGET if not the defaults).
runConformance({
  name: 'daytona-live',
  createProvider: () => daytona({ autoStopAfter: 15 }),
  skip: liveSkipReason(),
  timeoutMs: 300_000,
});

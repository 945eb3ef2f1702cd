import { runConformance } from '@statebox/core/testkit';
import { tensorlake } from '../src/index.js';
import { liveSkipReason } from '../src/testing.js';

// The same suite against the real service: STATEBOX_LIVE=tensorlake and TENSORLAKE_API_KEY (and
// optionally TENSORLAKE_API_URL) run it; otherwise every case is skipped with that reason.
runConformance({
  name: 'tensorlake-live',
  skip: liveSkipReason(),
  createProvider: () => tensorlake(),
  largeFileBytes: 16 * 1024 * 1024,
});

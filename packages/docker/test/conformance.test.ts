import { runConformance } from '@statebox/core/testkit';
import { docker } from '../src/index.js';
import { dockerSkipReason, TEST_IMAGE } from '../src/testing.js';

runConformance({
  name: 'docker',
  createProvider: () => docker({ image: TEST_IMAGE }),
  skip: await dockerSkipReason(),
});

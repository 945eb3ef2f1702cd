import { runConformance } from '@statebox/core/testkit';
import { afterAll } from 'vitest';
import { tensorlake } from '../src/index.js';
import { startEmulatedTensorlake } from '../src/testing.js';
import { describeAdapterTests } from './adapter.js';

// The whole suite through the real tensorlake SDK, over HTTP, against the loopback emulator.
const emulated = await startEmulatedTensorlake();
afterAll(() => emulated.close());

runConformance({
  name: 'tensorlake',
  createProvider: () => tensorlake(emulated.options),
  largeFileBytes: 16 * 1024 * 1024,
  additionalTests: (context) => describeAdapterTests(context, emulated),
});

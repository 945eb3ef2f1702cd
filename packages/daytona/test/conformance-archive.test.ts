import { runConformance } from '@statebox/core/testkit';
import { afterAll } from 'vitest';
import { emulatorSkipReason, startDaytonaForTests } from '../src/testing.js';

// The `archive` tier: suspend stops and archives; resume restores (slower) and starts.
const skip = emulatorSkipReason();
const daytona = skip ? undefined : await startDaytonaForTests({ tier: 'archive' });
afterAll(() => daytona?.close());

runConformance({
  name: 'daytona-archive',
  createProvider: () => daytona!.newProvider(),
  skip,
  largeFileBytes: 16 * 1024 * 1024,
});

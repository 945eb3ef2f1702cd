import { runConformance } from '@statebox/core/testkit';
import { afterAll } from 'vitest';
import { emulatorSkipReason, startDaytonaForTests } from '../src/testing.js';

// The `pause` tier (memory kept, processes frozen) on a VM-class emulated sandbox.
const skip = emulatorSkipReason();
const daytona = skip
  ? undefined
  : await startDaytonaForTests({ tier: 'pause', emulator: { sandboxClass: 'linux-vm' } });
afterAll(() => daytona?.close());

runConformance({
  name: 'daytona-pause',
  createProvider: () => daytona!.newProvider(),
  skip,
  largeFileBytes: 16 * 1024 * 1024,
});

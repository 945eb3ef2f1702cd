import { runConformance } from '@statebox/core/testkit';
import { afterAll } from 'vitest';
import { emulatorSkipReason, startDaytonaForTests } from '../src/testing.js';

// The default tier, `stop`, through the real @daytonaio/sdk against the loopback emulator.
const skip = emulatorSkipReason();
const daytona = skip ? undefined : await startDaytonaForTests({ tier: 'stop' });
afterAll(() => daytona?.close());

runConformance({
  name: 'daytona',
  createProvider: () => daytona!.newProvider(),
  skip,
});

import type { ConformanceContext } from '@statebox/core/testkit';
import type { EmulatedTensorlake } from '../src/testing.js';

export function describeAdapterTests(_context: ConformanceContext, _emulated: EmulatedTensorlake): void {}

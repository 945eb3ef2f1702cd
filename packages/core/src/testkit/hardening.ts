/**
 * Hardening cases (issue 7): bounded reads, safe and atomic writes, exec timeouts that end daemons, execs
 * interrupted by a suspend, a fork or a destroy, hard-link fidelity, and concurrent calls on one sandbox.
 *
 * Every case that could hang on a provider without the behaviour races its operation against a timer
 * (`within`), so a hang fails that case in seconds, and runs in its own sandbox, destroyed after it, so a
 * blocked reader, a surviving daemon or a stream from a device does not outlive the case.
 */
import type { SuiteContext } from './context.js';
import { describeConcurrency } from './hardening/concurrency.js';
import { describeExecHardening } from './hardening/exec.js';
import { describeHardLinks } from './hardening/links.js';
import { describeBoundedReads } from './hardening/reads.js';
import { hardeningContext } from './hardening/shared.js';
import { describeSafeWrites } from './hardening/writes.js';

export function describeHardening(suite: SuiteContext): void {
  const hardening = hardeningContext(suite);
  describeBoundedReads(hardening);
  describeSafeWrites(hardening);
  describeExecHardening(hardening);
  describeHardLinks(hardening);
  describeConcurrency(hardening);
}

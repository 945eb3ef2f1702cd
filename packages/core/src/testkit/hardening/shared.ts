import type { SandboxCapabilities } from '../../capabilities.js';
import type { ForkRequest } from '../../provider.js';
import type { Sandbox } from '../../sandbox.js';
import { RUN_LABEL, type SuiteContext, unless } from '../context.js';

/** How long a refusal that must come "at once" (a FIFO, a device) may take, exec round trips included. */
export const AT_ONCE_MS = 5_000;
/** How long an exec past its timeout or abort may take to settle, killing its processes included. */
export const SETTLE_MS = 15_000;
export const MIB = 1024 * 1024;

/** What every group of hardening cases needs: the suite, the skip reasons it shares, a tracked fork. */
export type HardeningContext = {
  suite: SuiteContext;
  capabilities: SandboxCapabilities;
  noSymlinks: string | undefined;
  noSuspend: string | undefined;
  noFork: string | undefined;
  fork: (source: Sandbox) => Promise<Sandbox>;
};

export function hardeningContext(suite: SuiteContext): HardeningContext {
  const { capabilities } = suite;
  return {
    suite,
    capabilities,
    noSymlinks: unless(capabilities.symlinks, capabilities, 'symlinks'),
    noSuspend: capabilities.suspend === 'none' ? "provider declares suspend: 'none'" : undefined,
    noFork: capabilities.fork === 'none' ? "provider declares fork: 'none'" : undefined,
    fork: async (source: Sandbox): Promise<Sandbox> => {
      const request: ForkRequest = { labels: { [RUN_LABEL]: suite.runId } };
      return suite.track(await source.fork(request));
    },
  };
}

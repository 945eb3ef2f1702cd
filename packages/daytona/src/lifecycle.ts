import type { Sandbox } from '@daytonaio/sdk';
import { InvalidStateError, UnsupportedCapabilityError } from '@statebox/core';
import { type DaytonaClient, TRANSITIONAL_STATES } from './client.js';
import type { SuspendTier } from './options.js';

const SUSPENDED = new Set(['stopped', 'paused', 'archived']);

/** Waits out a transition already under way (a concurrent call's, or Daytona's own auto-stop). */
async function settled(client: DaytonaClient, sandbox: Sandbox): Promise<void> {
  if (sandbox.state && TRANSITIONAL_STATES.has(sandbox.state)) await client.settle(sandbox);
}

/**
 * Puts a sandbox in `tier`. Already suspended (in any tier, by statebox or by Daytona's auto-stop) is
 * success, except that the archive tier archives a stopped sandbox.
 */
export async function suspendTo(client: DaytonaClient, sandbox: Sandbox, tier: SuspendTier): Promise<void> {
  await settled(client, sandbox);
  const state = sandbox.state ?? 'unknown';
  if (tier === 'pause') {
    if (SUSPENDED.has(state)) return;
    if (sandbox.sandboxClass && sandbox.sandboxClass !== 'linux-vm') {
      throw new UnsupportedCapabilityError(
        "suspend tier 'pause'",
        'daytona',
        `sandbox ${sandbox.id} is of class '${sandbox.sandboxClass}', which Daytona cannot pause; use tier 'stop' (or 'archive'), or create VM-class sandboxes`,
        { sandboxId: sandbox.id, operation: 'suspend' },
      );
    }
    await client.pause(sandbox);
    if (sandbox.state !== 'paused') await client.settle(sandbox);
    return;
  }
  if (state === 'started' || state === 'paused') await client.stop(sandbox);
  else if (!SUSPENDED.has(state)) {
    throw new InvalidStateError(sandbox.id, 'suspend', state, 'Wait for Daytona to finish, or destroy it.');
  }
  if (tier === 'archive' && sandbox.state === 'stopped') await client.archive(sandbox);
}

/** Starts a sandbox from any tier: stopped, paused (Daytona resumes it) or archived (slower: restored). */
export async function startFromAnyTier(client: DaytonaClient, sandbox: Sandbox): Promise<void> {
  await settled(client, sandbox);
  if (sandbox.state === 'started') return;
  await client.start(sandbox);
}

/** What `suspendTo` would bring back: the tier a suspended sandbox is in. */
export function tierOf(state: string | undefined): SuspendTier | undefined {
  if (state === 'stopped') return 'stop';
  if (state === 'paused') return 'pause';
  if (state === 'archived') return 'archive';
  return undefined;
}

import type { Sandbox } from '@daytonaio/sdk';
import { InvalidStateError, ProviderError, UnsupportedCapabilityError } from '@statebox/core';
import { type DaytonaClient, TRANSITIONAL_STATES } from './client.js';
import type { SuspendTier } from './options.js';

const SUSPENDED = new Set(['stopped', 'paused', 'archived']);

/**
 * Runs one transition; when Daytona refuses it because another process (or Daytona's own timer) moved the
 * sandbox meanwhile, waits that move out and accepts it if it ended where this one was going.
 */
async function transition(
  client: DaytonaClient,
  sandbox: Sandbox,
  action: () => Promise<void>,
  accept: readonly string[],
): Promise<void> {
  try {
    await action();
  } catch (error) {
    await client.settle(sandbox).catch(() => undefined);
    if (sandbox.state && accept.includes(sandbox.state)) return;
    throw error;
  }
}

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
    await transition(client, sandbox, () => client.pause(sandbox), ['paused', 'stopped', 'archived']);
    if (sandbox.state !== 'paused') await client.settle(sandbox);
    // The SDK's pause returns once the sandbox has left `pausing`, also when Daytona put it back.
    if (!SUSPENDED.has(sandbox.state ?? 'unknown')) {
      throw new ProviderError(
        'daytona',
        `Daytona did not pause sandbox ${sandbox.id}: it is ${sandbox.state}` +
          `${sandbox.errorReason ? ` (${sandbox.errorReason})` : ''}. It keeps running with its files; retry, or use tier 'stop'.`,
        { sandboxId: sandbox.id, operation: 'suspend' },
      );
    }
    return;
  }
  if (state === 'started' || state === 'paused') {
    await transition(client, sandbox, () => client.stop(sandbox), ['stopped', 'archived']);
  } else if (!SUSPENDED.has(state)) {
    throw new InvalidStateError(sandbox.id, 'suspend', state, 'Wait for Daytona to finish, or destroy it.');
  }
  if (tier === 'archive' && sandbox.state === 'stopped') {
    await transition(client, sandbox, () => client.archive(sandbox), ['archived']);
  }
}

/** Starts a sandbox from any tier: stopped, paused (Daytona resumes it) or archived (slower: restored). */
export async function startFromAnyTier(client: DaytonaClient, sandbox: Sandbox): Promise<void> {
  await settled(client, sandbox);
  if (sandbox.state === 'started') return;
  await transition(client, sandbox, () => client.start(sandbox), ['started']);
}

/** What `suspendTo` would bring back: the tier a suspended sandbox is in. */
export function tierOf(state: string | undefined): SuspendTier | undefined {
  if (state === 'stopped') return 'stop';
  if (state === 'paused') return 'pause';
  if (state === 'archived') return 'archive';
  return undefined;
}

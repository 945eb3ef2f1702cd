import type { Sandbox } from '@daytonaio/sdk';
import type { DaytonaClient } from './client.js';
import { PARENT_LABEL } from './labels.js';
import { startFromAnyTier, suspendTo, tierOf } from './lifecycle.js';

/**
 * Daytona forks only a started sandbox. A suspended source is started, forked and put back in the tier it
 * was in (stopped, paused or archived), also when the fork fails, so a failed fork leaves it as it was.
 * The child gets exactly the requested labels plus its parent's id.
 */
export async function forkSandbox(
  client: DaytonaClient,
  source: Sandbox,
  labels: Record<string, string>,
): Promise<Sandbox> {
  const tier = tierOf(source.state);
  if (tier) await startFromAnyTier(client, source);
  let child: Sandbox | undefined;
  try {
    child = await client.fork(source);
    await client.setLabels(child, { ...labels, [PARENT_LABEL]: source.id });
    return child;
  } catch (error) {
    // A child that exists but could not be labelled would be found as its parent: remove it.
    if (child) await client.delete(child).catch(() => undefined);
    throw error;
  } finally {
    if (tier) await suspendTo(client, source, tier);
  }
}

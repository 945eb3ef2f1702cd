import { InvalidStateError, ProviderError, type SandboxInfo } from '@statebox/core';
import { PROVIDER } from './errors.js';
import { discard, type LifecycleContext, nameFor, toInfo, waitForStatus } from './lifecycle.js';

/**
 * fork = Tensorlake's live copy (`POST /sandboxes/{id}/copy`), which leaves the source running and
 * gives each copy the source's memory and files. Copies come back unnamed (ephemeral, so unable to
 * suspend): each is then named with its labels and parent, as create names a sandbox. `times` copies
 * come from one request.
 *
 * A suspended source is refused: the API copies running sandboxes, and whether a suspended one can be
 * snapshotted is UNCONFIRMED, so `forkSuspended` is false and the caller resumes first.
 */
export async function forkSandbox(
  context: LifecycleContext,
  sandboxId: string,
  labels: Readonly<Record<string, string>>,
  times = 1,
): Promise<SandboxInfo[]> {
  const source = await waitForStatus(context, sandboxId, 'fork');
  if (source.status !== 'running') {
    throw new InvalidStateError(
      sandboxId,
      'fork',
      source.status,
      'Tensorlake copies running sandboxes: resume it, fork, then suspend it again.',
    );
  }
  const names = Array.from({ length: times }, () => nameFor(context, labels, sandboxId));
  const copies = await context.client.copy(sandboxId, times);
  const failed = copies.filter((copy) => copy.status === 'failed');
  if (failed.length > 0 || copies.length !== times) {
    await Promise.all(copies.filter((copy) => copy.status !== 'failed').map((copy) => discard(context.client, copy.sandboxId)));
    throw new ProviderError(
      PROVIDER,
      `fork of sandbox ${sandboxId} failed: Tensorlake made ${copies.length - failed.length} of ${times} copies` +
        `${failed[0]?.reason ? ` (${failed[0].reason})` : ''}. The source is unchanged; retry the fork.`,
      { sandboxId, operation: 'fork' },
    );
  }
  try {
    return await Promise.all(
      copies.map(async (copy, index) => {
        await context.client.rename(copy.sandboxId, names[index]!, 'fork');
        return toInfo(await waitForStatus(context, copy.sandboxId, 'fork'));
      }),
    );
  } catch (error) {
    await Promise.all(copies.map((copy) => discard(context.client, copy.sandboxId)));
    throw error;
  }
}

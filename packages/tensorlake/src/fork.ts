import { ProviderError, type SandboxInfo } from '@statebox/core';
import type { CopyResult } from './client.js';
import { httpStatus, PROVIDER } from './errors.js';
import { discard, type LifecycleContext, nameFor, toInfo, waitForStatus } from './lifecycle.js';

/**
 * fork = Tensorlake's live copy (`POST /sandboxes/{id}/copy`), which leaves the source running and
 * gives each copy the source's memory and files. Copies come back unnamed (ephemeral, so unable to
 * suspend): each is then named with its labels and parent, as create names a sandbox. `times` copies
 * come from one request.
 *
 * The API copies running sandboxes only, so a suspended source is resumed, copied and suspended again
 * (its memory is kept both ways; its processes run for the length of the copy). Forks racing on one
 * suspended source, from any process, may find it suspended again by another fork: the copy's conflict
 * is retried after resuming it once more.
 */
export async function forkSandbox(
  context: LifecycleContext,
  sandboxId: string,
  labels: Readonly<Record<string, string>>,
  times = 1,
): Promise<SandboxInfo[]> {
  const names = Array.from({ length: times }, () => nameFor(context, labels, sandboxId));
  let resumed = false;
  let copies: CopyResult[] | undefined;
  try {
    for (let attempt = 0; copies === undefined; attempt += 1) {
      const source = await waitForStatus(context, sandboxId, 'fork');
      if (source.status === 'suspended') {
        await context.client.resume(sandboxId);
        await waitForStatus(context, sandboxId, 'fork', (status) => status === 'running');
        resumed = true;
      }
      try {
        copies = await context.client.copy(sandboxId, times);
      } catch (error) {
        if (attempt >= MAX_CONFLICTS || !isConflict(error)) throw error;
      }
    }
  } finally {
    if (resumed) await suspendAgain(context, sandboxId);
  }
  const failed = copies.filter((copy) => copy.status === 'failed');
  if (failed.length > 0 || copies.length !== times) {
    await Promise.all(
      copies
        .filter((copy) => copy.status !== 'failed')
        .map((copy) => discard(context.client, copy.sandboxId)),
    );
    throw new ProviderError(
      PROVIDER,
      `fork of sandbox ${sandboxId} failed: Tensorlake made ${copies.length - failed.length} of ${times} copies` +
        `${failed[0]?.reason ? ` (${failed[0].reason})` : ''}. The source is unchanged; retry the fork.`,
      { sandboxId, operation: 'fork' },
    );
  }
  const made = copies;
  try {
    return await Promise.all(
      made.map(async (copy, index) => {
        await context.client.rename(copy.sandboxId, names[index]!, 'fork');
        return toInfo(await waitForStatus(context, copy.sandboxId, 'fork'));
      }),
    );
  } catch (error) {
    await Promise.all(made.map((copy) => discard(context.client, copy.sandboxId)));
    throw error;
  }
}

/** How often a fork retries a copy refused because another fork suspended the source meanwhile. */
const MAX_CONFLICTS = 8;

function isConflict(error: unknown): boolean {
  return (
    (error as { cause?: unknown } | undefined)?.cause !== undefined &&
    httpStatus((error as { cause: unknown }).cause) === 409
  );
}

/** Puts a source that fork resumed back to sleep; already suspended (by a racing fork) is fine. */
async function suspendAgain(context: LifecycleContext, sandboxId: string): Promise<void> {
  const now = await waitForStatus(context, sandboxId, 'fork');
  if (now.status === 'suspended') return;
  await context.client.suspend(sandboxId);
  await waitForStatus(context, sandboxId, 'fork', (status) => status === 'suspended');
}

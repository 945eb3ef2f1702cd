import {
  ConfigError,
  DEFAULT_WORKDIR,
  type SandboxInfo,
  SandboxNotFoundError,
  StateboxError,
  TimeoutError,
} from '@statebox/core';
import type { TensorlakeClient, TensorlakeInfo } from './client.js';
import { PROVIDER } from './errors.js';
import { decodeName, encodeName } from './names.js';
import { GONE, TRANSITIONAL, toStateboxStatus } from './status.js';

export type LifecycleContext = {
  client: TensorlakeClient;
  pollIntervalMs: number;
  operationTimeoutMs: number;
  maxNameLength: number;
};

/** statebox's view of a Tensorlake sandbox: labels and parent come from its name. */
export function toInfo(info: TensorlakeInfo): SandboxInfo {
  const decoded = decodeName(info.name);
  return {
    id: info.sandboxId,
    provider: PROVIDER,
    status: toStateboxStatus(info.status),
    labels: decoded?.labels ?? {},
    createdAt: (info.createdAt ?? new Date(0)).toISOString(),
    ...(decoded?.parentId !== undefined && { parentId: decoded.parentId }),
    workdir: DEFAULT_WORKDIR,
  };
}

/** A name for these labels, or a ConfigError saying how much room there is. */
export function nameFor(
  context: LifecycleContext,
  labels: Readonly<Record<string, string>>,
  parentId?: string,
): string {
  const withParent = encodeName(labels, parentId);
  if (withParent.length <= context.maxNameLength) return withParent;
  // The parent id is informational; labels are what list() needs, so the parent goes first.
  const withoutParent = encodeName(labels);
  if (withoutParent.length <= context.maxNameLength) return withoutParent;
  throw new ConfigError(
    'labels',
    `Tensorlake keeps labels in the sandbox's name, which they would make ${withoutParent.length} characters long ` +
      `(the limit is ${context.maxNameLength}; lowercase letters and digits take 1 each, any other byte 3). ` +
      'Use fewer or shorter labels.',
  );
}

/**
 * Polls until the sandbox is in none of the transitional statuses (`pending`, `snapshotting`,
 * `suspending`), which are waited out, never failures. `until` narrows what counts as settled.
 * A terminated sandbox is not found.
 */
export async function waitForStatus(
  context: LifecycleContext,
  sandboxId: string,
  operation: string,
  until: (status: string) => boolean = (status) => !TRANSITIONAL.has(status),
): Promise<TensorlakeInfo> {
  const deadline = Date.now() + context.operationTimeoutMs;
  for (;;) {
    const info = await context.client.get(sandboxId, operation);
    if (GONE.has(info.status)) {
      throw new SandboxNotFoundError(sandboxId, { provider: PROVIDER, operation });
    }
    if (until(info.status)) return info;
    if (Date.now() > deadline) {
      throw new TimeoutError(operation, context.operationTimeoutMs, { sandboxId });
    }
    await new Promise((resolve) => setTimeout(resolve, context.pollIntervalMs));
  }
}

/** Deletes a sandbox that a failed create or fork left behind; its own failure must not hide the first. */
export async function discard(client: TensorlakeClient, sandboxId: string): Promise<void> {
  await client.delete(sandboxId).catch((error: unknown) => {
    if (!SandboxNotFoundError.isInstance(error) && !StateboxError.isInstance(error)) throw error;
  });
}

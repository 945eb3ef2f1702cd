import type { SandboxStatus } from '@statebox/core';

/** Statuses a sandbox passes through on its way to `running` or `suspended`; polled, never failures. */
export const TRANSITIONAL = new Set(['pending', 'snapshotting', 'suspending']);
/** Statuses of a sandbox that no longer exists for statebox. */
export const GONE = new Set(['terminated', 'timeout']);

/**
 * The statebox status nearest to a Tensorlake status, for list() (which does not wait): only a finished
 * suspend is `suspended`; a sandbox still suspending (or starting, or resuming) is reported `running`,
 * so no caller acts on a suspend that has not happened yet.
 */
export function toStateboxStatus(status: string): SandboxStatus {
  return status === 'suspended' ? 'suspended' : 'running';
}

export function describeStatus(status: string): string {
  if (status === 'suspended') return 'suspended';
  return `${status} on Tensorlake`;
}

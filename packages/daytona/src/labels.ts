import type { Sandbox } from '@daytonaio/sdk';
import type { SandboxInfo, SandboxStatus } from '@statebox/core';

/** The child's parent, kept as a label so `get` needs one call (Daytona's DTO has no parent field). */
export const PARENT_LABEL = 'statebox.daytona/parent';
/**
 * Set on a sandbox statebox destroyed while Daytona would not delete it yet (a parent with live forks):
 * it is stopped, reads as not found, and is deleted when its last child goes.
 */
export const DESTROYED_LABEL = 'statebox.daytona/destroyed';
/** The label `@daytonaio/sdk` adds on every create. */
const SDK_LABEL = 'code-toolbox-language';

const hidden = (key: string) => key === SDK_LABEL || key.startsWith('statebox.daytona/');

export function userLabels(labels: Record<string, string> | undefined): Record<string, string> {
  return Object.fromEntries(Object.entries(labels ?? {}).filter(([key]) => !hidden(key)));
}

export function isDestroyed(sandbox: Sandbox): boolean {
  return (
    sandbox.labels?.[DESTROYED_LABEL] !== undefined ||
    sandbox.state === 'destroyed' ||
    sandbox.state === 'destroying'
  );
}

const RUNNING = new Set([
  'started',
  'starting',
  'creating',
  'restoring',
  'resuming',
  'forking',
  'snapshotting',
  'resizing',
  'pulling_snapshot',
  'pending_build',
  'building_snapshot',
]);

/** Daytona's 22 states in statebox's two: anything on its way to or at `started` is running. */
export function statusOf(state: string | undefined): SandboxStatus {
  return state && RUNNING.has(state) ? 'running' : 'suspended';
}

export function toInfo(sandbox: Sandbox, workdir: string): SandboxInfo {
  const parentId = sandbox.labels?.[PARENT_LABEL];
  return {
    id: sandbox.id,
    provider: 'daytona',
    status: statusOf(sandbox.state),
    labels: userLabels(sandbox.labels),
    createdAt: sandbox.createdAt ?? new Date(0).toISOString(),
    ...(parentId ? { parentId } : {}),
    workdir,
  };
}

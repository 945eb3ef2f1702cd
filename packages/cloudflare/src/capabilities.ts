import type { SandboxCapabilities } from '@statebox/core';

/**
 * What survives, as the conformance suite proves against the Worker in local workerd:
 * - suspend keeps /workspace (a squashfs backup in R2: every byte, mode, symlink and hard link);
 *   processes end, because the container is released. Files outside /workspace are not kept.
 * - fork restores the source's latest state (a fresh backup when it runs) into a new sandbox, without
 *   touching the source's processes; a suspended source needs no container.
 * - exec streams (the Worker relays the SDK's execStream as Server-Sent Events).
 */
export const capabilities: SandboxCapabilities = {
  suspend: 'filesystem',
  fork: 'filesystem',
  forkSuspended: true,
  forkSource: 'kept',
  execStreaming: true,
  fileModes: true,
  symlinks: true,
  hardLinks: true,
};

/** The only directory a suspend, a fork or a container restart keeps. */
export const PERSISTENT_PATHS = ['/workspace'] as const;

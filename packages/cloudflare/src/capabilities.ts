import type { SandboxCapabilities } from '@statebox/core';

/**
 * What survives, as the conformance suite proves against the Worker in local workerd:
 * - suspend keeps /workspace and /home (squashfs backups in R2: every byte, mode, symlink and hard
 *   link), and /root, which the image links into /home; processes end, because the container is
 *   released. Files anywhere else come back as the image has them.
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
  persistentPaths: ['/workspace', '/home', '/root'],
};

import type { SandboxCapabilities } from '@statebox/core';
import type { ResolvedOptions } from './options.js';

/** What a Docker provider instance keeps: it depends only on the suspend mode it was configured with. */
export function dockerCapabilities(suspend: ResolvedOptions['suspend']): SandboxCapabilities {
  return {
    // `pause` keeps processes in memory; `stop` releases everything but the files.
    suspend: suspend === 'pause' ? 'memory' : 'filesystem',
    fork: 'filesystem',
    forkSuspended: true,
    // The source's upper layer is sealed, so its container is replaced by one over a fresh upper.
    forkSource: 'restarted',
    execStreaming: true,
    fileModes: true,
    symlinks: true,
    // Kept by overlay's index=on in /workspace and by seeding forks' containers in the root filesystem
    // (links.ts, test/links.test.ts).
    hardLinks: true,
  };
}

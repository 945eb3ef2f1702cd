import type { SandboxCapabilities } from '@statebox/core';

/** What survives suspend and fork on the local provider, as the conformance suite proves it. */
export const localCapabilities: SandboxCapabilities = {
  // CRIU does not work on the kernels we target, so processes cannot be checkpointed: files only.
  suspend: 'filesystem',
  fork: 'filesystem',
  forkSuspended: true,
  // Sealing a running sandbox's upper layer needs its overlay unmounted, which ends its processes.
  forkSource: 'restarted',
  execStreaming: true,
  fileModes: true,
  symlinks: true,
  // Until issue 7 lands hard-link fidelity: a fork copies up each name of a linked file separately.
  hardLinks: false,
};

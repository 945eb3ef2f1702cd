import type { SandboxCapabilities } from '@statebox/core';
import type { SuspendTier } from './options.js';

/**
 * What a provider instance keeps, by its suspend tier. Only `pause` keeps memory (and only on VM sandbox
 * classes: a container-class sandbox refuses it with `UnsupportedCapabilityError`).
 */
export function capabilitiesFor(tier: SuspendTier): SandboxCapabilities {
  return {
    suspend: tier === 'pause' ? 'memory' : 'filesystem',
    // Daytona's fork is a copy-on-write clone of the disk ("identical filesystem", SDK 0.218); whether
    // memory is copied is unconfirmed, so only files are promised.
    fork: 'filesystem',
    // A suspended source is started, forked and put back in its tier (Daytona forks only started sandboxes).
    forkSuspended: true,
    // Whether Daytona keeps the source's processes through a fork is unconfirmed (the emulator's backing
    // provider restarts them), so statebox promises only the files.
    forkSource: 'restarted',
    // The toolbox's one-shot execute returns when the command ends; output arrives at the end.
    execStreaming: false,
    fileModes: true,
    symlinks: true,
    hardLinks: false,
  };
}

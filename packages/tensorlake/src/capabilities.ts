import type { SandboxCapabilities } from '@statebox/core';

/**
 * What Tensorlake documents, and where a fidelity is unconfirmed, the weaker value:
 * - suspend keeps memory, files and running processes (a Firecracker snapshot; docs "remote-dev");
 * - fork is the live copy, which keeps the source running and copies its memory (docs, SDK d.ts);
 * - forkSuspended: the API copies running sandboxes, so fork resumes a suspended source, copies it and
 *   suspends it again (fork.ts); memory is kept both ways;
 * - execStreaming is false: exec collects output as base64 to be byte-exact (see exec.ts), so onStdout
 *   and onStderr are called once at the end;
 * - fileModes and symlinks hold on the VM's ext4 filesystem (set and read through the shell);
 * - hardLinks is false: that a snapshot or copy keeps two names one inode is UNCONFIRMED.
 */
export const TENSORLAKE_CAPABILITIES: SandboxCapabilities = {
  suspend: 'memory',
  fork: 'memory',
  forkSuspended: true,
  forkSource: 'kept',
  execStreaming: false,
  fileModes: true,
  symlinks: true,
  hardLinks: false,
};

const ORDER = { memory: 2, filesystem: 1, none: 0 } as const;

/**
 * The capabilities with `weaker` applied, refusing any value stronger than Tensorlake's: an override
 * exists for backends that keep less (the emulator), never to claim more.
 */
export function withOverrides(weaker: Partial<SandboxCapabilities> | undefined): SandboxCapabilities {
  const result = { ...TENSORLAKE_CAPABILITIES, ...weaker };
  const base = TENSORLAKE_CAPABILITIES;
  const stronger =
    ORDER[result.suspend] > ORDER[base.suspend] ||
    ORDER[result.fork] > ORDER[base.fork] ||
    (result.forkSource === 'kept' && base.forkSource !== 'kept') ||
    (['forkSuspended', 'execStreaming', 'fileModes', 'symlinks', 'hardLinks'] as const).some(
      (flag) => result[flag] && !base[flag],
    );
  if (stronger) {
    throw new Error(
      `tensorlake provider: capabilities ${JSON.stringify(weaker)} claim more than Tensorlake keeps; overrides may only weaken`,
    );
  }
  return result;
}

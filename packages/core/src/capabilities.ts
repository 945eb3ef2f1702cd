/**
 * What a backend keeps, stated as fidelity rather than as yes/no flags.
 *
 * Backends differ in what survives a suspend or a fork: Tensorlake snapshots memory and files,
 * Daytona's stop keeps files only, Cloudflare keeps nothing unless backed up, and the local
 * provider kills processes but keeps every byte of the filesystem. Callers decide from these
 * values whether, say, a background server has to be restarted after `resume()`.
 *
 * Every value an adapter declares here is exercised by `@statebox/core/testkit`.
 */
export type SandboxCapabilities = {
  /**
   * What survives `suspend()` followed by `resume()`.
   * - `'memory'`: running processes continue where they were, and every file is kept.
   * - `'filesystem'`: every file, mode and symlink is kept; processes are gone.
   * - `'none'`: the backend cannot suspend; `suspend()` throws `UnsupportedCapabilityError`.
   */
  readonly suspend: 'memory' | 'filesystem' | 'none';

  /**
   * What a child created by `fork()` starts with.
   * - `'memory'`: a copy of the source's running processes and files.
   * - `'filesystem'`: a copy of the source's files; no processes.
   * - `'none'`: the backend cannot fork; `fork()` throws `UnsupportedCapabilityError`.
   */
  readonly fork: 'memory' | 'filesystem' | 'none';

  /** Whether a suspended sandbox can be forked without resuming it first. */
  readonly forkSuspended: boolean;

  /**
   * What a fork does to a running source's processes.
   * - `'kept'`: the source's processes keep running untouched.
   * - `'restarted'`: the source is briefly stopped so its filesystem can be sealed; its files are
   *   kept but its processes end (as after a filesystem-fidelity suspend).
   */
  readonly forkSource: 'kept' | 'restarted';

  /** Whether `exec` delivers output incrementally through `onStdout`/`onStderr` while the command runs. */
  readonly execStreaming: boolean;

  /** Whether file modes (permission bits) written or set in the sandbox are kept. */
  readonly fileModes: boolean;

  /** Whether symbolic links can be created and are kept across suspend and fork. */
  readonly symlinks: boolean;

  /**
   * Whether hard links stay one file across suspend, resume and fork: after them, two names of one file
   * still share an inode (link count kept), and a write through one name shows through the other, in
   * the source and in a child alike. When `false`, each name keeps its content but may become a
   * separate copy after a fork.
   */
  readonly hardLinks: boolean;

  /**
   * The directories whose contents survive suspend, resume and fork, when that is not the whole
   * filesystem (Cloudflare keeps only what its backups cover). Absent: every file survives as `suspend`
   * and `fork` say. When present it includes the workdir, and a file anywhere else is gone after a
   * suspend and resume, and absent from a fork's child.
   */
  readonly persistentPaths?: readonly string[];
};

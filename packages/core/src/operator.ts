/**
 * Optional provider methods for the people who operate sandboxes (the `statebox` CLI's `shell`, `ls`
 * and `prune`). A backend that cannot offer one leaves it out; callers check for the method before use
 * and say what the backend lacks instead of guessing.
 */

export type TerminalRequest = {
  /** The argv to run; the backend's login shell (`/bin/bash`, else `/bin/sh`) when left out. */
  command?: readonly string[];
  /** Absolute working directory. */
  cwd: string;
  /** Extra environment variables, merged over the sandbox's. `TERM` is set by the caller. */
  env?: Record<string, string>;
  columns: number;
  rows: number;
};

/**
 * An interactive program on a pseudo-terminal inside the sandbox. The terminal is the sandbox's own
 * (its slave side is the only thing the sandbox sees): a program in it cannot reach the caller's
 * terminal, so `TIOCSTI` and the like stay inside.
 */
export type TerminalSession = {
  /** Bytes typed by the user, as the terminal's input. */
  write(data: Uint8Array | string): void;
  resize(columns: number, rows: number): void;
  /** Output of the terminal (stdout and stderr are one stream on a terminal). */
  onData(listener: (chunk: Uint8Array) => void): void;
  /** Resolves with the program's exit code (128 + signal for a signal) once it and its output ended. */
  readonly exited: Promise<number>;
  /** Ends the program (the session's processes in the sandbox get SIGKILL or SIGHUP). */
  kill(): void;
};

/** Disk a sandbox holds, in bytes, as the backend can measure it. */
export type SandboxUsage = {
  /** What only this sandbox holds: its writable layer(s). Freed by destroying it. */
  ownBytes: number;
  /** Layers it shares with forks (sealed by a fork); counted once per sandbox that uses them. */
  sharedBytes: number;
};

export type PruneOptions = {
  /** Report what would go without removing anything. */
  dryRun: boolean;
};

export type PruneItem = {
  /** `layer`, `lock`, `sandbox` (a create or fork that died part-way), `volume`, `workdir`, `trash`. */
  kind: string;
  /** The layer id, lock name, sandbox id or path below the state directory. */
  name: string;
  /** Bytes it held (0 for a lock file). */
  bytes: number;
  /** Why it counts as left behind. */
  reason: string;
  /** After a real run: whether it is gone now (another process may have taken it back). */
  removed: boolean;
};

export type PruneReport = {
  dryRun: boolean;
  items: PruneItem[];
  /** Bytes of the items removed (dry run: that would be). */
  freedBytes: number;
};

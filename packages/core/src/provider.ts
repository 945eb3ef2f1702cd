import type { SandboxCapabilities } from './capabilities.js';
import type {
  PruneOptions,
  PruneReport,
  SandboxUsage,
  TerminalRequest,
  TerminalSession,
} from './operator.js';

/**
 * The `statebox-v1` provider contract: what every backend adapter implements.
 *
 * It is id-based and stateless on purpose. Any process, or a replica on another machine, can act on a
 * sandbox that another process created, knowing only its id; an adapter keeps no state in memory that
 * another instance would need. Users do not call this directly: they use `statebox.create()` and the
 * `Sandbox` handle, which validate input, normalise errors and retry transient failures once, in core.
 *
 * Inputs reaching an adapter are already validated and normalised by core: paths are absolute and
 * normalised, ids are non-empty strings, timeouts are positive integers.
 */
export type SandboxProvider = {
  readonly specificationVersion: 'statebox-v1';
  /** Short backend name, e.g. `'local'`, `'docker'`. Used in errors and in `SandboxInfo.provider`. */
  readonly name: string;
  readonly capabilities: SandboxCapabilities;

  /** Creates and starts a sandbox. The returned sandbox is `running`, its workdir exists and is empty. */
  create(request: CreateRequest): Promise<SandboxInfo>;

  /** Looks a sandbox up by id. Throws `SandboxNotFoundError` only when it certainly does not exist. */
  get(sandboxId: string): Promise<SandboxInfo>;

  /** Lists the sandboxes whose labels contain every given label. Destroyed sandboxes are not listed. */
  list(filter?: ListFilter): Promise<SandboxInfo[]>;

  /**
   * Runs a command in a running sandbox. A non-zero exit code is a result, not an error.
   * Must kill the command's whole process tree on timeout (throwing `TimeoutError` with the output so
   * far) and on abort (rejecting with the signal's reason). A process the command started in the
   * background with its output detached (`server > log 2>&1 &`) keeps running after exec returns, until a
   * suspend or fork ends it as `capabilities` say, or the sandbox is destroyed. A timeout or abort
   * ends everything the command started, daemons that called `setsid` included.
   * An exec still running when its sandbox is suspended, restarted by a fork or destroyed rejects with
   * `InvalidStateError` (never a bare exit code such as 137).
   */
  exec(sandboxId: string, request: ExecRequest): Promise<ExecOutput>;

  /**
   * Reads a whole regular file, following symlinks inside the sandbox. Throws `FileNotFoundError` when
   * it does not exist, `FileTooLargeError` when it holds more than `options.maxBytes` (before reading it
   * whole), `InvalidPathError` at once for a directory, FIFO, socket or device (never blocking on one),
   * and `TimeoutError` past `options.timeoutMs`.
   */
  readFile(sandboxId: string, path: string, options: ReadFileOptions): Promise<Uint8Array>;

  /**
   * Writes a whole file, creating missing parent directories. Atomic: a reader, a crash or a concurrent
   * suspend sees the old content or the new, never a mix or an empty file; the file is replaced, so other
   * hard links to the old file keep the old content. A symlink is followed inside the sandbox and its
   * target replaced (a dangling one creates its target). With `mode`, the file gets that mode; without
   * it, an existing file keeps its mode and a new one gets 0644. A directory, FIFO, socket or device at
   * the path is refused with `InvalidPathError`.
   */
  writeFile(sandboxId: string, path: string, data: Uint8Array, options?: WriteFileOptions): Promise<void>;

  /**
   * Releases the sandbox's compute and keeps its state (what is kept: `capabilities.suspend`).
   * Idempotent: suspending a suspended sandbox returns its info. A failed suspend leaves it usable.
   */
  suspend(sandboxId: string): Promise<SandboxInfo>;

  /** Brings a suspended sandbox back to `running`. Idempotent on a running sandbox. */
  resume(sandboxId: string): Promise<SandboxInfo>;

  /**
   * Creates a new sandbox that starts from the source's current state (what is copied:
   * `capabilities.fork`). Parent and child are isolated both ways from then on. The child is `running`.
   * A failed fork leaves the source as it was.
   */
  fork(sandboxId: string, request?: ForkRequest): Promise<SandboxInfo>;

  /** Destroys the sandbox and its state. Idempotent: destroying an unknown or destroyed id resolves. */
  destroy(sandboxId: string): Promise<void>;

  /**
   * Optional: an interactive program on a pseudo-terminal of the sandbox's own (`statebox shell`).
   * The sandbox must be running (`InvalidStateError` otherwise). Its processes end with the session,
   * and a suspend or destroy ends the session.
   */
  terminal?(sandboxId: string, request: TerminalRequest): Promise<TerminalSession>;

  /** Optional: the disk the sandbox holds (`statebox ls`, `inspect`). */
  usage?(sandboxId: string): Promise<SandboxUsage>;

  /**
   * Optional: removes what crashed processes left in the backend's state (orphaned layers, stale locks,
   * half-made sandboxes), never anything a live operation or a listed sandbox uses. With `dryRun`,
   * only reports.
   */
  prune?(options: PruneOptions): Promise<PruneReport>;
};

export type SandboxStatus = 'running' | 'suspended';

export type SandboxInfo = {
  readonly id: string;
  /** The provider's `name`. */
  readonly provider: string;
  readonly status: SandboxStatus;
  readonly labels: Readonly<Record<string, string>>;
  /** ISO 8601 creation time. */
  readonly createdAt: string;
  /** The sandbox this one was forked from, if any. */
  readonly parentId?: string | undefined;
  /** The default working directory for exec and for relative paths; `/workspace` unless stated. */
  readonly workdir: string;
};

export type CreateRequest = {
  /** Labels to find the sandbox by later (`list({ labels })`), e.g. `{ session: 'sesn_123' }`. */
  labels?: Record<string, string>;
  /** Environment variables set for every exec (exec's own `env` wins). */
  env?: Record<string, string>;
  /** Backend-specific image or template, e.g. a Docker image. Adapters document what they accept. */
  image?: string;
};

export type ForkRequest = {
  /** Labels of the child. The source's labels are not inherited, so a child is not found as its parent. */
  labels?: Record<string, string>;
};

export type ListFilter = {
  labels?: Record<string, string>;
};

export type WriteFileOptions = {
  /** Permission bits, e.g. `0o755`. */
  mode?: number;
  /** Give up after this many milliseconds with `TimeoutError`; the file keeps its old content. */
  timeoutMs?: number;
  /** Aborting rejects with the signal's reason; the file keeps its old content. */
  signal?: AbortSignal;
};

export type ReadFileOptions = {
  /** Refuse, with `FileTooLargeError`, a file larger than this. Core fills in its default (64 MiB). */
  maxBytes: number;
  /** Give up after this many milliseconds with `TimeoutError`. */
  timeoutMs?: number;
  signal?: AbortSignal;
};

export type ExecRequest = {
  /** An argv array, run without a shell; or a string, run by `/bin/sh -c`. */
  command: string | readonly string[];
  /** Absolute working directory (core resolves relative ones against the workdir). */
  cwd: string;
  /** Extra environment variables, merged over the sandbox's. */
  env?: Record<string, string>;
  /** Kill the whole process tree after this many milliseconds and throw `TimeoutError`. */
  timeoutMs?: number;
  /** Bytes written to the command's standard input, which is then closed. Without it stdin is empty. */
  stdin?: Uint8Array;
  signal?: AbortSignal;
  /** Each stream keeps at most this many bytes; the middle of a longer one is replaced by a marker. */
  maxOutputBytes: number;
  /** Called with each chunk as it arrives, uncapped (adapters with `execStreaming`; others call it once at the end). */
  onStdout?: (chunk: Uint8Array) => void;
  onStderr?: (chunk: Uint8Array) => void;
};

export type ExecOutput = {
  exitCode: number;
  stdout: Uint8Array;
  stderr: Uint8Array;
  /** Whether a stream went over `maxOutputBytes` and had its middle replaced by a marker. */
  truncated: { stdout: boolean; stderr: boolean };
};

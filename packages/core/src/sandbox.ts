import { z } from 'zod';
import { ConfigError, InvalidStateError, StateboxError, TransientError } from './errors.js';
import { resolveSandboxPath } from './paths.js';
import type { ExecOutput, ForkRequest, SandboxInfo, SandboxProvider, SandboxStatus } from './provider.js';

/** Default cap per output stream: generous enough for a build log, small enough never to exhaust memory. */
export const DEFAULT_MAX_OUTPUT_BYTES = 32 * 1024 * 1024;

/** Default cap of `readFile`: a file larger than this is refused with `FileTooLargeError` unless raised. */
export const DEFAULT_MAX_READ_BYTES = 64 * 1024 * 1024;

/** The longest timer Node can set (2^31 - 1 ms, about 24.8 days); longer ones would fire at once. */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

export type ReadOptions = {
  /** `'utf8'` returns a string; without it, bytes. */
  encoding?: 'utf8';
  /** Refuse a larger file with `FileTooLargeError` before reading it. Default 64 MiB (`DEFAULT_MAX_READ_BYTES`). */
  maxBytes?: number;
  /** Give up after this many ms with `TimeoutError`. */
  timeoutMs?: number;
  signal?: AbortSignal;
};

export type WriteOptions = {
  /** Permission bits, e.g. `0o755`. Without it an existing file keeps its mode, a new one gets 0644. */
  mode?: number;
  /** Give up after this many ms with `TimeoutError`; the file keeps its old content. */
  timeoutMs?: number;
  signal?: AbortSignal;
};

export type ExecOptions = {
  /** Working directory, absolute or relative to the workdir. Default: the workdir (`/workspace`). */
  cwd?: string;
  env?: Record<string, string>;
  /** Kill the whole process tree after this many ms and throw `TimeoutError` (which keeps the output so far). */
  timeoutMs?: number;
  /** Written to standard input, which is then closed. */
  stdin?: string | Uint8Array;
  signal?: AbortSignal;
  /** Per-stream cap; past it the middle is replaced by a `[statebox: N bytes of output omitted]` line. */
  maxOutputBytes?: number;
  /** Called with text as it arrives (as one call at the end on backends without `execStreaming`). */
  onStdout?: (text: string) => void;
  onStderr?: (text: string) => void;
};

export type ExecResult = {
  readonly exitCode: number;
  /** Standard output decoded as UTF-8. */
  readonly stdout: string;
  readonly stderr: string;
  readonly stdoutBytes: Uint8Array;
  readonly stderrBytes: Uint8Array;
  readonly truncated: { readonly stdout: boolean; readonly stderr: boolean };
  readonly durationMs: number;
};

const noNul = (what: string) =>
  z.string().refine((value) => !value.includes('\0'), `${what} must not contain NUL bytes`);

/** Labels: any strings without NUL. */
const labelsSchema = z.record(noNul('a label'), noNul('a label value'));

/**
 * Environment variables: a name is non-empty and has no `=` or NUL (the kernel's `name=value` format
 * could not carry them); a value has no NUL.
 */
const environmentSchema = z.record(
  z
    .string()
    .min(1, 'names an empty variable')
    .refine(
      (key) => !key.includes('='),
      'is a variable name containing "=", which the environment cannot carry',
    )
    .refine((key) => !key.includes('\0'), 'is a variable name containing a NUL byte'),
  noNul('a variable value'),
);

const timeoutSchema = z
  .number()
  .int()
  .positive()
  .max(MAX_TIMEOUT_MS, `must be at most ${MAX_TIMEOUT_MS} ms (about 24.8 days)`);

const execOptionsSchema = z.object({
  cwd: noNul('cwd').optional(),
  env: environmentSchema.optional(),
  timeoutMs: timeoutSchema.optional(),
  stdin: z.union([z.string(), z.instanceof(Uint8Array)]).optional(),
  signal: z.instanceof(AbortSignal).optional(),
  maxOutputBytes: z.number().int().positive().optional(),
  onStdout: z.function().optional(),
  onStderr: z.function().optional(),
});

const commandSchema = z.union([
  noNul('the command').pipe(z.string().min(1)),
  z.array(noNul('an argument')).min(1),
]);

const readOptionsSchema = z.object({
  encoding: z.literal('utf8').optional(),
  maxBytes: z.number().int().positive().optional(),
  timeoutMs: timeoutSchema.optional(),
  signal: z.instanceof(AbortSignal).optional(),
});

const writeOptionsSchema = z.object({
  mode: z.number().int().min(0).max(0o7777, 'must be an integer from 0 to 0o7777').optional(),
  timeoutMs: timeoutSchema.optional(),
  signal: z.instanceof(AbortSignal).optional(),
});

/** @internal Exported for `statebox.create`, which validates its env and labels the same way. */
export { environmentSchema, labelsSchema };

const retryableOperations = new Set(['get', 'readFile', 'suspend', 'resume', 'destroy', 'list']);

/**
 * Validates `input` against `schema`, throwing a `ConfigError` that names the offending option.
 * @internal
 */
export function parseOptions<T>(schema: z.ZodType<T>, input: unknown, what: string): T {
  const parsed = schema.safeParse(input);
  if (parsed.success) return parsed.data;
  const issue = innermostIssue(parsed.error.issues[0]!);
  const option = issue.path.map(String).join('.') || what;
  const message = issue.message.charAt(0).toLowerCase() + issue.message.slice(1);
  throw new ConfigError(option, `Invalid ${what}: '${option}' ${message}.`);
}

/**
 * The issue that says what is wrong. zod wraps a record key's issue ("invalid key in record") and a
 * union's ("invalid input"); the refinement inside, e.g. an env name containing `=`, is the useful one.
 */
function innermostIssue(issue: z.core.$ZodIssue): { path: PropertyKey[]; message: string } {
  let inner: z.core.$ZodIssue | undefined;
  if (issue.code === 'invalid_key') inner = issue.issues[0];
  // The branch of the union that got past its type check is the one the caller meant.
  if (issue.code === 'invalid_union') {
    inner = issue.errors.find((branch) => branch[0] && branch[0].code !== 'invalid_type')?.[0];
  }
  if (!inner) return issue;
  const explained = innermostIssue(inner);
  return { path: [...issue.path, ...explained.path], message: explained.message };
}

/**
 * Runs an idempotent provider call, retrying `TransientError` a few times with backoff.
 * Non-idempotent calls (create, exec, fork, writeFile) are never retried: a retry could double their effect.
 * @internal
 */
export async function callProvider<T>(operation: string, call: () => Promise<T>): Promise<T> {
  const attempts = retryableOperations.has(operation) ? 3 : 1;
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (error) {
      if (attempt >= attempts || !TransientError.isInstance(error)) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100 * 4 ** (attempt - 1)));
    }
  }
}

/**
 * A handle to one sandbox. Cheap to create: it holds the provider and the id, nothing else that
 * another process would need, so `statebox.get(id)` in a new process gives an equivalent handle.
 */
export class Sandbox {
  readonly provider: SandboxProvider;
  #info: SandboxInfo;
  #destroyed = false;

  constructor(provider: SandboxProvider, info: SandboxInfo) {
    this.provider = provider;
    this.#info = info;
  }

  get id(): string {
    return this.#info.id;
  }

  /** The last known info; `refresh()` asks the provider again. */
  get info(): SandboxInfo {
    return this.#info;
  }

  /** The last known status. */
  get status(): SandboxStatus {
    return this.#info.status;
  }

  get labels(): Readonly<Record<string, string>> {
    return this.#info.labels;
  }

  get workdir(): string {
    return this.#info.workdir;
  }

  async refresh(): Promise<SandboxInfo> {
    this.#assertUsable('refresh');
    this.#info = await callProvider('get', () => this.provider.get(this.id));
    return this.#info;
  }

  /**
   * Runs a command: a string goes through `/bin/sh -c`, an array is an argv run directly.
   * A non-zero exit code is returned, not thrown.
   */
  async exec(command: string | readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
    this.#assertUsable('exec');
    parseOptions(z.object({ command: commandSchema }), { command }, 'exec command');
    const parsed = parseOptions(execOptionsSchema, options, 'exec options');
    const stdoutDecoder = new TextDecoder();
    const stderrDecoder = new TextDecoder();
    const started = performance.now();
    const output: ExecOutput = await this.provider.exec(this.id, {
      command,
      cwd: resolveSandboxPath(parsed.cwd ?? this.workdir, this.workdir, this.id),
      ...(parsed.env && { env: parsed.env }),
      ...(parsed.timeoutMs !== undefined && { timeoutMs: parsed.timeoutMs }),
      ...(parsed.stdin !== undefined && {
        stdin: typeof parsed.stdin === 'string' ? new TextEncoder().encode(parsed.stdin) : parsed.stdin,
      }),
      ...(parsed.signal && { signal: parsed.signal }),
      maxOutputBytes: parsed.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES,
      ...(options.onStdout && {
        onStdout: (chunk: Uint8Array) => options.onStdout!(stdoutDecoder.decode(chunk, { stream: true })),
      }),
      ...(options.onStderr && {
        onStderr: (chunk: Uint8Array) => options.onStderr!(stderrDecoder.decode(chunk, { stream: true })),
      }),
    });
    return toExecResult(output, performance.now() - started);
  }

  /**
   * Reads a regular file as bytes, or as text with `'utf8'` (or `{ encoding: 'utf8' }`). A file over
   * `maxBytes` (default 64 MiB) is refused with `FileTooLargeError`; a FIFO, socket, device or directory
   * with `InvalidPathError`, without blocking.
   */
  readFile(path: string): Promise<Uint8Array>;
  readFile(path: string, encoding: 'utf8'): Promise<string>;
  readFile(path: string, options: ReadOptions & { encoding: 'utf8' }): Promise<string>;
  readFile(path: string, options: ReadOptions): Promise<Uint8Array>;
  async readFile(path: string, options?: 'utf8' | ReadOptions): Promise<Uint8Array | string> {
    this.#assertUsable('readFile');
    const resolved = resolveSandboxPath(path, this.workdir, this.id);
    const parsed = parseOptions(
      readOptionsSchema,
      typeof options === 'string' ? { encoding: options } : (options ?? {}),
      'readFile options',
    );
    const bytes = await callProvider('readFile', () =>
      this.provider.readFile(this.id, resolved, {
        maxBytes: parsed.maxBytes ?? DEFAULT_MAX_READ_BYTES,
        ...(parsed.timeoutMs !== undefined && { timeoutMs: parsed.timeoutMs }),
        ...(parsed.signal && { signal: parsed.signal }),
      }),
    );
    return parsed.encoding === 'utf8' ? new TextDecoder().decode(bytes) : bytes;
  }

  /**
   * Writes a file (text is UTF-8), creating parent directories. The file is replaced atomically: a
   * reader or a crash sees the old content or the new one, never a mix. `mode` sets the permission bits.
   */
  async writeFile(path: string, data: string | Uint8Array, options: WriteOptions = {}): Promise<void> {
    this.#assertUsable('writeFile');
    const resolved = resolveSandboxPath(path, this.workdir, this.id);
    if (typeof data !== 'string' && !(data instanceof Uint8Array)) {
      throw new ConfigError('data', `writeFile(${JSON.stringify(path)}) needs a string or a Uint8Array.`);
    }
    const parsed = parseOptions(writeOptionsSchema, options, 'writeFile options');
    const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data;
    await this.provider.writeFile(this.id, resolved, bytes, {
      ...(parsed.mode !== undefined && { mode: parsed.mode }),
      ...(parsed.timeoutMs !== undefined && { timeoutMs: parsed.timeoutMs }),
      ...(parsed.signal && { signal: parsed.signal }),
    });
  }

  /** Releases compute and keeps state. What survives: `provider.capabilities.suspend`. */
  async suspend(): Promise<SandboxInfo> {
    this.#assertUsable('suspend');
    this.#info = await callProvider('suspend', () => this.provider.suspend(this.id));
    return this.#info;
  }

  async resume(): Promise<SandboxInfo> {
    this.#assertUsable('resume');
    this.#info = await callProvider('resume', () => this.provider.resume(this.id));
    return this.#info;
  }

  /** Branches a new sandbox from this one's current state. Both stay isolated from each other. */
  async fork(options: ForkRequest = {}): Promise<Sandbox> {
    this.#assertUsable('fork');
    const request = parseOptions(z.object({ labels: labelsSchema.optional() }), options, 'fork options');
    const child = await this.provider.fork(this.id, request);
    // A fork may restart the source (capabilities.forkSource), so its info is stale now.
    this.#info = await callProvider('get', () => this.provider.get(this.id)).catch(() => this.#info);
    return new Sandbox(this.provider, child);
  }

  /** Destroys the sandbox and its state. Safe to call twice. */
  async destroy(): Promise<void> {
    if (this.#destroyed) return;
    await callProvider('destroy', () => this.provider.destroy(this.id));
    this.#destroyed = true;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.destroy();
  }

  #assertUsable(operation: string): void {
    if (this.#destroyed) {
      throw new InvalidStateError(this.id, operation, 'destroyed', 'Create or fork a new sandbox.');
    }
  }
}

function toExecResult(output: ExecOutput, durationMs: number): ExecResult {
  let stdout: string | undefined;
  let stderr: string | undefined;
  return {
    exitCode: output.exitCode,
    get stdout() {
      stdout ??= new TextDecoder().decode(output.stdout);
      return stdout;
    },
    get stderr() {
      stderr ??= new TextDecoder().decode(output.stderr);
      return stderr;
    },
    stdoutBytes: output.stdout,
    stderrBytes: output.stderr,
    truncated: output.truncated,
    durationMs,
  };
}

export function isStateboxError(error: unknown): error is StateboxError {
  return StateboxError.isInstance(error);
}

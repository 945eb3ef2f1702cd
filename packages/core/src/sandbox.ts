import { z } from 'zod';
import { ConfigError, InvalidStateError, StateboxError, TransientError } from './errors.js';
import { resolveSandboxPath } from './paths.js';
import type { ExecOutput, ForkRequest, SandboxInfo, SandboxProvider, SandboxStatus } from './provider.js';

/** Default cap per output stream: generous enough for a build log, small enough never to exhaust memory. */
export const DEFAULT_MAX_OUTPUT_BYTES = 32 * 1024 * 1024;

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

const environmentSchema = z.record(z.string(), z.string());

const execOptionsSchema = z.object({
  cwd: z.string().optional(),
  env: environmentSchema.optional(),
  timeoutMs: z.number().int().positive().optional(),
  stdin: z.union([z.string(), z.instanceof(Uint8Array)]).optional(),
  signal: z.instanceof(AbortSignal).optional(),
  maxOutputBytes: z.number().int().positive().optional(),
  onStdout: z.function().optional(),
  onStderr: z.function().optional(),
});

const commandSchema = z.union([z.string().min(1), z.array(z.string()).min(1)]);

const retryableOperations = new Set(['get', 'readFile', 'suspend', 'resume', 'destroy', 'list']);

/**
 * Validates `input` against `schema`, throwing a `ConfigError` that names the offending option.
 * @internal
 */
export function parseOptions<T>(schema: z.ZodType<T>, input: unknown, what: string): T {
  const parsed = schema.safeParse(input);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const option = issue.path.join('.') || what;
  throw new ConfigError(option, `Invalid ${what}: '${option}' ${issue.message.toLowerCase()}.`);
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
    parseOptions(commandSchema, command, 'exec command');
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

  /** Reads a file as bytes, or as text with `'utf8'`. */
  readFile(path: string): Promise<Uint8Array>;
  readFile(path: string, encoding: 'utf8'): Promise<string>;
  async readFile(path: string, encoding?: 'utf8'): Promise<Uint8Array | string> {
    this.#assertUsable('readFile');
    const resolved = resolveSandboxPath(path, this.workdir, this.id);
    const bytes = await callProvider('readFile', () => this.provider.readFile(this.id, resolved));
    return encoding === 'utf8' ? new TextDecoder().decode(bytes) : bytes;
  }

  /** Writes a file (text is UTF-8), creating parent directories. `mode` sets the permission bits. */
  async writeFile(path: string, data: string | Uint8Array, options: { mode?: number } = {}): Promise<void> {
    this.#assertUsable('writeFile');
    const resolved = resolveSandboxPath(path, this.workdir, this.id);
    if (typeof data !== 'string' && !(data instanceof Uint8Array)) {
      throw new ConfigError('data', `writeFile(${JSON.stringify(path)}) needs a string or a Uint8Array.`);
    }
    if (
      options.mode !== undefined &&
      !(Number.isInteger(options.mode) && options.mode >= 0 && options.mode <= 0o7777)
    ) {
      throw new ConfigError(
        'mode',
        `writeFile mode must be an integer from 0 to 0o7777, got ${options.mode}.`,
      );
    }
    const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data;
    await this.provider.writeFile(
      this.id,
      resolved,
      bytes,
      options.mode === undefined ? {} : { mode: options.mode },
    );
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
    const request = parseOptions(z.object({ labels: environmentSchema.optional() }), options, 'fork options');
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

import { type ExecOutput, TimeoutError } from '@statebox/core';
import { OutputBuffer } from './output.js';

export type StopReason = 'timeout' | 'abort';

export type CollectorOptions = {
  /** For the `TimeoutError`: the operation (`exec`) and the sandbox it ran in. */
  operation: string;
  sandboxId: string;
  /** Cap of each stream's kept bytes (see `OutputBuffer`). */
  maxOutputBytes: number;
  timeoutMs?: number | undefined;
  signal?: AbortSignal | undefined;
  onStdout?: ((chunk: Uint8Array) => void) | undefined;
  onStderr?: ((chunk: Uint8Array) => void) | undefined;
  /**
   * Ends the command and everything it started; called at most once, when the timeout fires or the
   * signal aborts. Its failure is ignored: the command's own end is what settles the call.
   */
  stop: (reason: StopReason) => unknown;
};

/**
 * The output side of an exec, whatever carries it (a child's pipes, a Docker exec stream, a vendor's
 * SSE): both streams captured within the cap and forwarded to the callbacks, a timer and the abort
 * signal armed to stop the command, and one way to turn the end into the spec's answer: an
 * `ExecOutput`, a `TimeoutError` carrying the output so far, or the signal's reason.
 */
export class ExecCollector {
  readonly stdout: OutputBuffer;
  readonly stderr: OutputBuffer;
  readonly #options: CollectorOptions;
  readonly #timer: NodeJS.Timeout | undefined;
  readonly #onAbort = () => this.#stop('abort');
  #stopped: StopReason | undefined;

  constructor(options: CollectorOptions) {
    this.#options = options;
    this.stdout = new OutputBuffer(options.maxOutputBytes);
    this.stderr = new OutputBuffer(options.maxOutputBytes);
    this.#timer =
      options.timeoutMs === undefined
        ? undefined
        : setTimeout(() => this.#stop('timeout'), options.timeoutMs);
    options.signal?.addEventListener('abort', this.#onAbort, { once: true });
    if (options.signal?.aborted) this.#stop('abort');
  }

  /** Why the command was stopped, if it was. */
  get stopped(): StopReason | undefined {
    return this.#stopped;
  }

  pushStdout(chunk: Uint8Array): void {
    this.stdout.push(chunk);
    this.#options.onStdout?.(chunk);
  }

  pushStderr(chunk: Uint8Array): void {
    this.stderr.push(chunk);
    this.#options.onStderr?.(chunk);
  }

  /** Disarms the timer and the abort listener (idempotent); call it once the command has ended. */
  disarm(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#options.signal?.removeEventListener('abort', this.#onAbort);
  }

  /** Throws what a stopped command answers: the signal's reason, or a `TimeoutError` with the output. */
  throwIfStopped(): void {
    if (this.#stopped === 'abort')
      throw this.#options.signal?.reason ?? new Error(`${this.#options.operation} aborted`);
    if (this.#stopped === 'timeout') {
      throw new TimeoutError(this.#options.operation, this.#options.timeoutMs!, {
        sandboxId: this.#options.sandboxId,
        stdout: this.stdout.toBytes(),
        stderr: this.stderr.toBytes(),
      });
    }
  }

  /** Disarms, throws if stopped, else the command's output with its exit code. */
  result(exitCode: number): ExecOutput {
    this.disarm();
    this.throwIfStopped();
    return {
      exitCode,
      stdout: this.stdout.toBytes(),
      stderr: this.stderr.toBytes(),
      truncated: { stdout: this.stdout.truncated, stderr: this.stderr.truncated },
    };
  }

  #stop(reason: StopReason): void {
    if (this.#stopped) return;
    this.#stopped = reason;
    try {
      Promise.resolve(this.#options.stop(reason)).catch(() => undefined);
    } catch {
      // See `CollectorOptions.stop`.
    }
  }
}

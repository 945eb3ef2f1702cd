/**
 * The statebox error hierarchy.
 *
 * Each class is marked with a `Symbol.for(...)` key, so `XError.isInstance(error)` works even when two
 * copies of `@statebox/core` are loaded (an adapter bundling its own copy, a monorepo with duplicates),
 * where `instanceof` would silently answer false.
 *
 * The one rule callers rely on: **not found is never a transient failure**. An orchestrator that sees
 * `SandboxNotFoundError` may create a replacement; one that sees `TransientError` must retry or give
 * up, never create a duplicate.
 */

const marker = Symbol.for('statebox.error');

function markerFor(name: string): symbol {
  return Symbol.for(`statebox.error.${name}`);
}

export type StateboxErrorOptions = {
  /** The sandbox the failed operation was about, when there is one. */
  sandboxId?: string;
  /** The operation that failed, e.g. `exec`, `fork`. */
  operation?: string;
  cause?: unknown;
};

/** Base class of every error statebox throws on purpose. */
export class StateboxError extends Error {
  readonly [marker] = true;
  readonly sandboxId: string | undefined;
  readonly operation: string | undefined;
  /** Whether repeating the same call may succeed. Only `TransientError` says yes. */
  readonly isRetryable: boolean = false;

  constructor(message: string, options: StateboxErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'StateboxError';
    this.sandboxId = options.sandboxId;
    this.operation = options.operation;
  }

  static isInstance(error: unknown): error is StateboxError {
    return typeof error === 'object' && error !== null && marker in error;
  }
}

type ErrorClass<T> = { new (...args: never[]): T; readonly prototype: T };

/**
 * Marks a subclass so that `Sub.isInstance` recognises instances from any copy of this package.
 * Kept as a function rather than a base-class trick so each class stays a plain `class` in stack traces.
 */
function brand<T extends StateboxError>(cls: ErrorClass<T>, name: string): void {
  const symbol = markerFor(name);
  Object.defineProperty(cls.prototype, symbol, { value: true });
  Object.defineProperty(cls, 'isInstance', {
    value: (error: unknown): boolean => typeof error === 'object' && error !== null && symbol in error,
  });
}

/** The sandbox does not exist (never created, destroyed, or removed behind statebox's back). */
export class SandboxNotFoundError extends StateboxError {
  declare static isInstance: (error: unknown) => error is SandboxNotFoundError;
  constructor(
    sandboxId: string,
    options: Omit<StateboxErrorOptions, 'sandboxId'> & { provider?: string } = {},
  ) {
    super(
      `Sandbox ${sandboxId} not found${options.provider ? ` on provider '${options.provider}'` : ''}` +
        `${options.operation ? ` (during ${options.operation})` : ''}: it was destroyed or never existed. ` +
        'Check the id, or call list() to see the sandboxes this provider knows.',
      { ...options, sandboxId },
    );
    this.name = 'SandboxNotFoundError';
  }
}
brand(SandboxNotFoundError, 'SandboxNotFoundError');

/** A file or directory asked for does not exist inside the sandbox. */
export class FileNotFoundError extends StateboxError {
  declare static isInstance: (error: unknown) => error is FileNotFoundError;
  readonly path: string;
  constructor(path: string, options: StateboxErrorOptions = {}) {
    super(
      `No such file in sandbox ${options.sandboxId ?? '?'}: ${path}. ` +
        'Paths are sandbox paths, absolute or relative to /workspace; list the directory with exec("ls -la <dir>").',
      options,
    );
    this.name = 'FileNotFoundError';
    this.path = path;
  }
}
brand(FileNotFoundError, 'FileNotFoundError');

/** A file is larger than the `maxBytes` a read allows; nothing was read into memory. */
export class FileTooLargeError extends StateboxError {
  declare static isInstance: (error: unknown) => error is FileTooLargeError;
  readonly path: string;
  readonly size: number;
  readonly maxBytes: number;
  constructor(path: string, size: number, maxBytes: number, options: StateboxErrorOptions = {}) {
    super(
      `File ${path} in sandbox ${options.sandboxId ?? '?'} is ${size} bytes, over readFile's maxBytes of ${maxBytes}. ` +
        'Pass a larger { maxBytes } to read it whole, or read part of it with exec(["head", "-c", "N", path]).',
      options,
    );
    this.name = 'FileTooLargeError';
    this.path = path;
    this.size = size;
    this.maxBytes = maxBytes;
  }
}
brand(FileTooLargeError, 'FileTooLargeError');

/**
 * A failure that may pass: a network error, a busy daemon, a lock held by another process.
 * Retrying the same call is safe for idempotent operations. Never a sign that the sandbox is gone.
 */
export class TransientError extends StateboxError {
  declare static isInstance: (error: unknown) => error is TransientError;
  override readonly isRetryable = true;
  constructor(message: string, options: StateboxErrorOptions = {}) {
    super(message, options);
    this.name = 'TransientError';
  }
}
brand(TransientError, 'TransientError');

/** The backend cannot do what was asked (see `SandboxCapabilities`). */
export class UnsupportedCapabilityError extends StateboxError {
  declare static isInstance: (error: unknown) => error is UnsupportedCapabilityError;
  readonly capability: string;
  readonly provider: string;
  constructor(capability: string, provider: string, hint: string, options: StateboxErrorOptions = {}) {
    super(`Provider '${provider}' does not support ${capability}. ${hint}`, options);
    this.name = 'UnsupportedCapabilityError';
    this.capability = capability;
    this.provider = provider;
  }
}
brand(UnsupportedCapabilityError, 'UnsupportedCapabilityError');

/** The sandbox exists but is in a state that does not allow the operation (exec on a suspended one). */
export class InvalidStateError extends StateboxError {
  declare static isInstance: (error: unknown) => error is InvalidStateError;
  readonly status: string;
  constructor(sandboxId: string, operation: string, status: string, hint: string) {
    super(`Cannot ${operation} sandbox ${sandboxId}: it is ${status}. ${hint}`, { sandboxId, operation });
    this.name = 'InvalidStateError';
    this.status = status;
  }
}
brand(InvalidStateError, 'InvalidStateError');

/** A path is malformed or climbs out of the sandbox's workdir. */
export class InvalidPathError extends StateboxError {
  declare static isInstance: (error: unknown) => error is InvalidPathError;
  readonly path: string;
  constructor(path: string, reason: string, options: StateboxErrorOptions = {}) {
    super(`Invalid sandbox path ${JSON.stringify(path)}: ${reason}`, options);
    this.name = 'InvalidPathError';
    this.path = path;
  }
}
brand(InvalidPathError, 'InvalidPathError');

/**
 * An operation ran past its time limit. For `exec`, the whole process tree was killed and the output
 * produced until then is kept in `stdout`/`stderr`, so nothing is lost.
 */
export class TimeoutError extends StateboxError {
  declare static isInstance: (error: unknown) => error is TimeoutError;
  readonly timeoutMs: number;
  readonly stdout: Uint8Array;
  readonly stderr: Uint8Array;
  constructor(
    operation: string,
    timeoutMs: number,
    options: StateboxErrorOptions & { stdout?: Uint8Array; stderr?: Uint8Array } = {},
  ) {
    super(
      `${operation} in sandbox ${options.sandboxId ?? '?'} timed out after ${timeoutMs} ms; ` +
        'its processes were killed. Raise timeoutMs, or run long jobs in the background and poll.',
      { ...options, operation },
    );
    this.name = 'TimeoutError';
    this.timeoutMs = timeoutMs;
    this.stdout = options.stdout ?? new Uint8Array();
    this.stderr = options.stderr ?? new Uint8Array();
  }
}
brand(TimeoutError, 'TimeoutError');

/** Configuration is missing, malformed, or names a provider whose package is not installed. */
export class ConfigError extends StateboxError {
  declare static isInstance: (error: unknown) => error is ConfigError;
  /** The option (or package, or environment variable) at fault. */
  readonly option: string;
  constructor(option: string, message: string, options: StateboxErrorOptions = {}) {
    super(message, options);
    this.name = 'ConfigError';
    this.option = option;
  }
}
brand(ConfigError, 'ConfigError');

/**
 * The backend failed in a way that retrying will not fix: isolation is unavailable on this kernel,
 * a state directory is corrupt, the daemon rejected the request. The message says what to do.
 */
export class ProviderError extends StateboxError {
  declare static isInstance: (error: unknown) => error is ProviderError;
  readonly provider: string;
  constructor(provider: string, message: string, options: StateboxErrorOptions = {}) {
    super(message, options);
    this.name = 'ProviderError';
    this.provider = provider;
  }
}
brand(ProviderError, 'ProviderError');

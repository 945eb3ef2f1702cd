import {
  DaytonaAuthenticationError,
  DaytonaConnectionError,
  DaytonaError,
  DaytonaFileNotFoundError,
  DaytonaForbiddenError,
  DaytonaNotFoundError,
  DaytonaRateLimitError,
  DaytonaTimeoutError,
} from '@daytonaio/sdk';
import {
  FileNotFoundError,
  ProviderError,
  SandboxNotFoundError,
  StateboxError,
  TransientError,
} from '@statebox/core';

export type ErrorContext = { operation: string; sandboxId?: string | undefined; path?: string | undefined };

/** A readable message from whatever the SDK threw (a 404 body can arrive as an object: never `[object Object]`). */
export function describe(error: unknown): string {
  if (error instanceof Error) {
    const message = error.message;
    if (message && message !== '[object Object]') return message;
    const status = (error as { statusCode?: number }).statusCode;
    return `${error.name}${status ? ` (HTTP ${status})` : ''}`;
  }
  if (typeof error === 'object' && error !== null) return JSON.stringify(error);
  return String(error);
}

/**
 * Daytona's failures as statebox errors. Not-found and transient never mix: a 404 about the sandbox is
 * `SandboxNotFoundError`, a missing file `FileNotFoundError`, and a connection failure, a client-side
 * timeout, a 429, 502, 503 or 504 are `TransientError` (the SDK retries only connection errors, never 5xx).
 */
export function toStateboxError(error: unknown, context: ErrorContext): StateboxError {
  if (StateboxError.isInstance(error)) return error;
  const options = { operation: context.operation, cause: error, sandboxId: context.sandboxId };
  const where = `Daytona ${context.operation}${context.sandboxId ? ` of sandbox ${context.sandboxId}` : ''}`;
  const detail = describe(error);
  if (error instanceof DaytonaFileNotFoundError && context.path) {
    return new FileNotFoundError(context.path, options);
  }
  if (error instanceof DaytonaNotFoundError && context.sandboxId && !context.path) {
    return new SandboxNotFoundError(context.sandboxId, {
      operation: context.operation,
      provider: 'daytona',
      cause: error,
    });
  }
  if (error instanceof DaytonaConnectionError || error instanceof DaytonaTimeoutError) {
    return new TransientError(`${where} failed: ${detail}. Daytona did not answer in time; retry.`, options);
  }
  if (error instanceof DaytonaRateLimitError) {
    const headers = (error as { headers?: Record<string, unknown> }).headers ?? {};
    const retryAfter = headers['retry-after'] ?? headers['x-ratelimit-reset'];
    return new TransientError(
      `${where} was rate limited: ${detail}. Retry${retryAfter ? ` after ${String(retryAfter)} s` : ' in a few seconds'}, or raise the organisation's tier.`,
      options,
    );
  }
  if (error instanceof DaytonaAuthenticationError || error instanceof DaytonaForbiddenError) {
    return new ProviderError(
      'daytona',
      `${where} was refused: ${detail}. Check DAYTONA_API_KEY (and DAYTONA_API_URL for a self-hosted Daytona).`,
      options,
    );
  }
  if (error instanceof DaytonaError) {
    const status = error.statusCode;
    if (status === 502 || status === 503 || status === 504) {
      return new TransientError(`${where} failed: ${detail} (HTTP ${status}); retry.`, options);
    }
    return new ProviderError(
      'daytona',
      `${where} failed: ${detail}${status ? ` (HTTP ${status})` : ''}.`,
      options,
    );
  }
  return new ProviderError('daytona', `${where} failed: ${detail}.`, options);
}

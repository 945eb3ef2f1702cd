import {
  ConfigError,
  ProviderError,
  SandboxNotFoundError,
  StateboxError,
  TransientError,
} from '@statebox/core';
import { RemoteAPIError, SandboxError, SandboxNotFoundError as TensorlakeNotFoundError } from 'tensorlake';

export const PROVIDER = 'tensorlake';

export type ErrorContext = {
  sandboxId?: string | undefined;
  operation: string;
  /** The API URL, for messages about reaching it. */
  apiUrl: string;
};

/** The HTTP status of a Tensorlake API answer carried by an SDK error, if it carries one. */
export function httpStatus(error: unknown): number | undefined {
  return error instanceof RemoteAPIError ? error.statusCode : undefined;
}

/**
 * Maps a failure of the tensorlake SDK to a statebox error.
 *
 * - a 404 on a lifecycle call (the SDK's `SandboxNotFoundError`) is `SandboxNotFoundError`;
 * - 401 and 403 are `ConfigError` naming `TENSORLAKE_API_KEY`;
 * - 408, 429 and 5xx are `TransientError`;
 * - a refused connection or a timeout arrives as a plain `SandboxError` ("error sending request for
 *   url …", research/providers-update.md A.4): `TransientError`, never not-found, so no caller creates a
 *   second sandbox after a network blip;
 * - any other API answer is a `ProviderError` with the service's message.
 *
 * A data-plane 404 (a missing file) is the caller's to interpret: it arrives as `RemoteAPIError(404)`.
 */
export function toStateboxError(error: unknown, context: ErrorContext): Error {
  if (StateboxError.isInstance(error)) return error as Error;
  const where = context.sandboxId ? ` of sandbox ${context.sandboxId}` : '';
  const options = { operation: context.operation, cause: error, sandboxId: context.sandboxId };
  if (error instanceof TensorlakeNotFoundError && context.sandboxId) {
    return new SandboxNotFoundError(context.sandboxId, {
      provider: PROVIDER,
      operation: context.operation,
      cause: error,
    });
  }
  const status = httpStatus(error);
  const message = error instanceof Error ? error.message : String(error);
  if (status === 401 || status === 403) {
    return new ConfigError(
      'apiKey',
      `Tensorlake refused the API key (${status}) during ${context.operation}${where}: set TENSORLAKE_API_KEY to a valid key for ${context.apiUrl}.`,
      options,
    );
  }
  if (status !== undefined && (status === 408 || status === 429 || status >= 500)) {
    return new TransientError(
      `Tensorlake answered ${status} to ${context.operation}${where}: ${message}. Retry in a moment.`,
      options,
    );
  }
  if (status !== undefined) {
    return new ProviderError(
      PROVIDER,
      `Tensorlake refused ${context.operation}${where} (${status}): ${message}`,
      options,
    );
  }
  if (error instanceof SandboxError) {
    return new TransientError(
      `Could not reach Tensorlake at ${context.apiUrl} during ${context.operation}${where}: ${message}. ` +
        'Check the network and TENSORLAKE_API_URL, then retry; the sandbox was not assumed gone.',
      options,
    );
  }
  return new ProviderError(PROVIDER, `${context.operation}${where} failed: ${message}`, options);
}

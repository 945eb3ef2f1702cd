import {
  ConfigError,
  FileNotFoundError,
  FileTooLargeError,
  InvalidPathError,
  InvalidStateError,
  ProviderError,
  SandboxNotFoundError,
  type StateboxError,
  TransientError,
} from '@statebox/core';

export const PROVIDER = 'cloudflare';

/** The Worker's error answer: `{ error: { code, message, ...details } }`. */
export type WorkerErrorBody = {
  code: string;
  message: string;
  sandboxId?: string;
  status?: string;
  path?: string;
  size?: number;
  maxBytes?: number;
};

export type ErrorContext = { sandboxId?: string; operation: string; path?: string };

/**
 * Maps a Worker answer to a statebox error. Not-found comes only from the registry's answer (a 404
 * with code `not_found`); a 5xx, a reset Durable Object or an unreadable answer is transient.
 */
export function fromWorker(
  status: number,
  body: WorkerErrorBody | undefined,
  context: ErrorContext,
): StateboxError {
  const { sandboxId, operation } = context;
  const message = body?.message ?? `HTTP ${status}`;
  switch (body?.code) {
    case 'unauthorized':
      return new ConfigError(
        'token',
        `The statebox Worker refused the token (${message}). Set STATEBOX_CLOUDFLARE_TOKEN (or the token option) to the Worker's STATEBOX_TOKEN secret.`,
        { sandboxId, operation },
      );
    case 'not_configured':
      return new ConfigError('STATEBOX_TOKEN', message, { sandboxId, operation });
    case 'not_found':
      return sandboxId
        ? new SandboxNotFoundError(sandboxId, { operation, provider: PROVIDER })
        : new ProviderError(PROVIDER, `${operation}: ${message} Is the URL a statebox Worker?`, {
            operation,
          });
    case 'invalid_state':
      return new InvalidStateError(
        sandboxId ?? body.sandboxId ?? '?',
        operation,
        body.status ?? 'not running',
        body.status === 'suspended' ? 'Call resume() first.' : 'Check its status with get().',
      );
    case 'file_not_found':
      return new FileNotFoundError(context.path ?? body.path ?? '?', { sandboxId, operation });
    case 'invalid_path':
      return new InvalidPathError(context.path ?? body.path ?? '?', message, { sandboxId, operation });
    case 'file_too_large':
      return new FileTooLargeError(context.path ?? body.path ?? '?', body.size ?? 0, body.maxBytes ?? 0, {
        sandboxId,
        operation,
      });
    case 'backup_too_large':
      return new ProviderError(PROVIDER, message, { sandboxId, operation });
    case 'bad_request':
      return new ProviderError(PROVIDER, `${operation} was refused by the Worker: ${message}`, {
        sandboxId,
        operation,
      });
    case 'transient':
      return new TransientError(`${operation} on the statebox Worker failed transiently: ${message}`, {
        sandboxId,
        operation,
      });
    default:
      if (status >= 500 || status === 429 || body === undefined) {
        return new TransientError(`${operation}: the statebox Worker answered ${status}: ${message}`, {
          sandboxId,
          operation,
        });
      }
      return new ProviderError(PROVIDER, `${operation}: the statebox Worker answered ${status}: ${message}`, {
        sandboxId,
        operation,
      });
  }
}

export function unreachable(url: string, error: unknown, context: ErrorContext): TransientError {
  const reason =
    error instanceof Error ? ((error.cause as Error | undefined)?.message ?? error.message) : String(error);
  return new TransientError(
    `The statebox Worker at ${url} did not answer ${context.operation} (${reason}). Check STATEBOX_CLOUDFLARE_URL and that the Worker is deployed.`,
    { sandboxId: context.sandboxId, operation: context.operation, cause: error },
  );
}

import { ProviderError, StateboxError, TransientError } from '@statebox/core';
import { DockerApiError, DockerConnectionError } from './client.js';

export type ErrorContext = { host: string; operation: string; sandboxId?: string };

/** How to get a daemon running, for messages. */
export function daemonHint(host: string): string {
  return (
    `Docker daemon not reachable at ${host}: start it (\`dockerd &\`, or \`systemctl start docker\`; ` +
    '.ci/docker.sh installs and starts one) or set DOCKER_HOST to where it listens.'
  );
}

/** Statuses and daemon messages that say "try again" rather than "this is wrong". */
const transientMessages = [
  /context deadline exceeded/i,
  /timeout/i,
  /temporarily unavailable/i,
  /device or resource busy/i,
  /removal of container .* is already in progress/i,
  /is restarting/i,
  /connection reset/i,
];

/**
 * Turns what the client threw into a statebox error. Never produces `SandboxNotFoundError`: only the
 * provider, which knows that a 404 was about the container, decides that.
 */
export function toStateboxError(error: unknown, context: ErrorContext): StateboxError {
  if (StateboxError.isInstance(error)) return error;
  const options = {
    operation: context.operation,
    cause: error,
    ...(context.sandboxId && { sandboxId: context.sandboxId }),
  };
  if (error instanceof DockerConnectionError) {
    const reason = `${daemonHint(context.host)} (${error.code ?? error.message})`;
    if (error.code === 'EACCES') {
      return new ProviderError(
        'docker',
        `Permission denied on ${context.host}: run as root, or add this user to the docker group.`,
        options,
      );
    }
    // A missing socket means no daemon (retrying will not help); a refused or dropped connection is
    // what a daemon that is restarting looks like.
    if (error.code === 'ENOENT' || error.code === 'ENOTFOUND')
      return new ProviderError('docker', reason, options);
    return new TransientError(reason, options);
  }
  if (error instanceof DockerApiError) {
    const message = `Docker ${context.operation} failed${context.sandboxId ? ` for sandbox ${context.sandboxId}` : ''}: ${error.message}`;
    if (
      error.status === 503 ||
      (error.status >= 500 && transientMessages.some((pattern) => pattern.test(error.message)))
    ) {
      return new TransientError(`${message}. The daemon is busy; retry.`, options);
    }
    return new ProviderError('docker', message, options);
  }
  return new ProviderError(
    'docker',
    `Docker ${context.operation} failed: ${(error as Error)?.message ?? String(error)}`,
    options,
  );
}

export function isNoSuchContainer(error: unknown): boolean {
  return error instanceof DockerApiError && error.status === 404 && /no such container/i.test(error.message);
}

export function isNoSuchImage(error: unknown): boolean {
  return (
    error instanceof DockerApiError &&
    error.status === 404 &&
    /no such image|not found|pull access denied/i.test(error.message)
  );
}

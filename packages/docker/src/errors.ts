import { ProviderError, StateboxError, TransientError } from '@statebox/core';
import { DockerApiError, DockerConnectionError } from './client.js';

export type ErrorContext = { host: string; operation: string; sandboxId?: string; stateDir?: string };

/**
 * Replaces host paths in a daemon message: a failed mount names every layer directory and Docker's own
 * overlay directories, which say nothing useful to a caller and map the host's disk for anyone who reads
 * the error (an agent, a log). The rest of the message is kept.
 */
export function scrubHostPaths(message: string, stateDir?: string): string {
  const end = `[^\\s,:;'"()\\]]*`;
  let scrubbed = message;
  if (stateDir && stateDir !== '/') {
    const escaped = stateDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    scrubbed = scrubbed.replace(new RegExp(`${escaped}${end}`, 'g'), '<statebox-layers>');
  }
  return scrubbed
    .replace(new RegExp(`/var/lib/docker${end}`, 'g'), '<docker-data>')
    .replace(new RegExp(`/(?:var/)?run/(?:docker|containerd)${end}`, 'g'), '<docker-runtime>')
    .replace(new RegExp(`/proc/\\d+${end}`, 'g'), '<host-proc>');
}

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
    const detail = scrubHostPaths(error.message, context.stateDir);
    const scrubbedOptions = { ...options, cause: new DockerApiError(error.status, detail, error.path) };
    const message = `Docker ${context.operation} failed${context.sandboxId ? ` for sandbox ${context.sandboxId}` : ''}: ${detail}`;
    if (
      error.status === 503 ||
      (error.status >= 500 && transientMessages.some((pattern) => pattern.test(error.message)))
    ) {
      return new TransientError(`${message}. The daemon is busy; retry.`, scrubbedOptions);
    }
    return new ProviderError('docker', `${message}${hintFor(detail)}`, scrubbedOptions);
  }
  return new ProviderError(
    'docker',
    `Docker ${context.operation} failed${context.sandboxId ? ` for sandbox ${context.sandboxId}` : ''}: ` +
      scrubHostPaths((error as Error)?.message ?? String(error), context.stateDir),
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

/** What to do about the daemon failures that have a known cause. */
function hintFor(detail: string): string {
  if (/mount.*(no such file|not a directory)|failed to mount local volume/i.test(detail)) {
    return '. Its workspace layers are missing or damaged on the Docker host (removed outside statebox?); destroy the sandbox and create or fork another.';
  }
  if (/storage-opt|storage opt|pquota|quota/i.test(detail)) {
    return ". diskBytes needs Docker's overlay2 driver on xfs mounted with pquota; set diskBytes: 0 on this daemon.";
  }
  if (/\/bin\/sh.*no such file|no such file.*\/bin\/sh/i.test(detail)) {
    return '. statebox runs every exec through /bin/sh (and writeFile through sh, stat, chmod and mv): use an image that has them.';
  }
  if (/pids|resource temporarily unavailable/i.test(detail)) {
    return '. The sandbox is at its pidsLimit; end some of its processes or raise pidsLimit.';
  }
  return '';
}

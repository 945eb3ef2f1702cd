import {
  ConfigError,
  type ExecOutput,
  FileNotFoundError,
  InvalidPathError,
  InvalidStateError,
  ProviderError,
  SandboxNotFoundError,
  TransientError,
  UnsupportedCapabilityError,
} from '@statebox/core';

/**
 * Every statebox error the local provider raises, built in one place. The rules: a sandbox that is not
 * in the state directory is `SandboxNotFoundError`; a record that cannot be read now (I/O) is
 * `TransientError`, never "not found"; a record that is not a record is `ProviderError` that says to
 * destroy the sandbox; a host that cannot run sandboxes is `ProviderError` that says what to install or
 * change; every message names the sandbox, the operation and what to do, and no host path of the state
 * directory (it reads `<home>`).
 */

const PROVIDER = 'local';

export type ErrorContext = { sandboxId: string; operation: string };

export function notFoundError(sandboxId: string, operation: string): SandboxNotFoundError {
  return new SandboxNotFoundError(sandboxId, { provider: PROVIDER, operation });
}

export function suspendedError(sandboxId: string, operation: string): InvalidStateError {
  return new InvalidStateError(
    sandboxId,
    operation,
    'suspended',
    'Call resume() first; its files are all there.',
  );
}

export function imagesUnsupportedError(): UnsupportedCapabilityError {
  return new UnsupportedCapabilityError(
    'images',
    PROVIDER,
    "Local sandboxes run the host's /usr read-only; install tools into /workspace, or use the docker provider for images.",
    { operation: 'create' },
  );
}

/**
 * What ended a command that ended abnormally, when the init it entered is no longer the sandbox's live
 * init: the sandbox is gone, was suspended, or was restarted (by a fork, or because its init died).
 */
export function interruptedError(
  sandboxId: string,
  operation: string,
  now: 'gone' | 'suspended' | 'restarted',
): Error {
  if (now === 'gone') return notFoundError(sandboxId, operation);
  if (now === 'suspended') {
    return new InvalidStateError(
      sandboxId,
      operation,
      'suspended',
      'It was suspended while the command ran, which ended the command; call resume() and run it again.',
    );
  }
  return new InvalidStateError(
    sandboxId,
    operation,
    'restarted',
    'Its processes were ended while the command ran (a fork that restarted it, or its init died); ' +
      'run the command again (the next one restarts a sandbox whose init died).',
  );
}

/**
 * The exit codes of the read and write scripts (files.ts) as statebox errors: 100 missing, 101 a
 * directory, 102 a parent is not a directory, 103 not a regular file (its kind on stderr), 105 input
 * cut short; anything else is the provider's failure, with the script's stderr.
 */
export function fileError(
  output: ExecOutput,
  context: { sandboxId: string; provider: string },
  operation: 'readFile' | 'writeFile',
  path: string,
): Error {
  const message = new TextDecoder().decode(output.stderr).trim();
  const options = { sandboxId: context.sandboxId, operation };
  switch (output.exitCode) {
    case 100:
      return new FileNotFoundError(path, options);
    case 101:
      return new InvalidPathError(path, 'it is a directory; read or write the files inside it.', options);
    case 102:
      return new InvalidPathError(path, `a parent of it is not a directory (${message}).`, options);
    case 103:
      return new InvalidPathError(
        path,
        `it is a ${message || 'special file'}, not a regular file; ${operation} handles regular files only. ` +
          (operation === 'readFile'
            ? 'Read from it with exec (for example exec(["head", "-c", "1024", path])).'
            : 'Remove it first, or write to it with exec.'),
        options,
      );
    case 105:
      return new ProviderError(
        context.provider,
        `writeFile ${path} in sandbox ${context.sandboxId} got only part of its data (${message}); the file was left as it was. Retry the write.`,
        options,
      );
    default:
      return new ProviderError(
        context.provider,
        `${operation} ${path} in sandbox ${context.sandboxId} failed: ${message || `exit ${output.exitCode}`}`,
        options,
      );
  }
}

// The host: what the provider needs to run sandboxes at all.

export function notLinuxError(platform: string): ProviderError {
  return new ProviderError(
    PROVIDER,
    `The local provider isolates sandboxes with Linux namespaces, which ${platform} does not have. ` +
      "Use the docker provider instead (STATEBOX_PROVIDER=docker, or { provider: 'docker' }).",
  );
}

export function missingToolsError(missing: string[]): ProviderError {
  return new ProviderError(
    PROVIDER,
    `The local provider needs ${missing.join(', ')} from util-linux, which ${missing.length > 1 ? 'are' : 'is'} not installed. ` +
      'Install util-linux (apt-get install util-linux / dnf install util-linux).',
  );
}

export function namespacesUnavailableError(
  command: string,
  detail: string,
  rootless: boolean,
): ProviderError {
  return new ProviderError(
    PROVIDER,
    `Linux namespaces are not available to this process (${command}: ${detail}). ` +
      (rootless
        ? 'Unprivileged user namespaces may be disabled: check `sysctl user.max_user_namespaces` ' +
          '(and kernel.unprivileged_userns_clone or AppArmor restrictions on Ubuntu), or run as root.'
        : 'The kernel or the container this runs in forbids unshare(2); run on a host or a privileged container.'),
  );
}

export function uidInUseError(uid: number, account: string): ProviderError {
  return new ProviderError(
    PROVIDER,
    `The local provider runs sandbox commands as host uid ${uid}, but the host account '${account}' uses it, ` +
      'and could then signal or read them. Choose an unused uid with the sandboxUid option (or STATEBOX_LOCAL_UID).',
  );
}

export function homeError(root: string, error: unknown): ConfigError {
  const code = (error as NodeJS.ErrnoException).code;
  return new ConfigError(
    'home',
    code === 'EEXIST' || code === 'ENOTDIR'
      ? `The local provider's home ${root} (or a parent of it) is a file, not a directory. ` +
          'Point home (or STATEBOX_HOME) at a directory, or at a path that does not exist yet.'
      : `The local provider cannot create its home ${root}: ${(error as Error).message}. ` +
          'Point home (or STATEBOX_HOME) at a writable directory.',
    { cause: error },
  );
}

// A sandbox's record and its init.

export function unreadableRecordError(
  id: string,
  operation: string | undefined,
  error: unknown,
): TransientError {
  return new TransientError(`Could not read the record of sandbox ${id}: ${(error as Error).message}`, {
    sandboxId: id,
    ...(operation && { operation }),
    cause: error,
  });
}

export function corruptRecordError(
  id: string,
  operation: string | undefined,
  problem: string,
): ProviderError {
  return new ProviderError(
    PROVIDER,
    `The record of sandbox ${id} (sandboxes/${id}/sandbox.json in the state directory) is corrupt: ${problem}. ` +
      `Its files cannot be used safely; destroy the sandbox (destroy('${id}')) to stop it and reclaim its space.`,
    { sandboxId: id, ...(operation && { operation }) },
  );
}

/** `detail`: the init's stderr with host paths already replaced. */
export function startFailedError(sandboxId: string, detail: string): ProviderError {
  return new ProviderError(
    PROVIDER,
    `Could not start sandbox ${sandboxId}: ${detail || 'the init exited before it was ready'}. ` +
      'If this persists, check that overlayfs is available (grep overlay /proc/filesystems) and that the ' +
      'state directory is on a local filesystem.',
    { sandboxId, operation: 'start' },
  );
}

export function initVanishedError(sandboxId: string): ProviderError {
  return new ProviderError(PROVIDER, `Sandbox ${sandboxId}'s init vanished right after start-up; retry.`, {
    sandboxId,
  });
}

export function cgroupJoinError(sandboxId: string, error: unknown): ProviderError {
  return new ProviderError(
    PROVIDER,
    `Could not put sandbox ${sandboxId} in its control groups: ${(error as Error).message}`,
    { sandboxId, operation: 'start', cause: error },
  );
}

/** `waiting`: the processes the init still waits for, described. */
export function stopTimeoutError(
  context: { sandboxId?: string; operation?: string },
  initPid: number,
  waiting: string,
): TransientError {
  return new TransientError(
    `Sandbox ${context.sandboxId ?? '?'} did not stop within 5 s after SIGKILL` +
      `${context.operation ? ` (during ${context.operation})` : ''}: its init (pid ${initPid}) ` +
      `waits for ${waiting || 'processes that are gone now'}. A process in state D is stuck in the ` +
      'kernel (often on a hung filesystem); retry once it has exited.',
    { ...context },
  );
}

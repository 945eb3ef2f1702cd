import { posix } from 'node:path';
import { packTar, randomHex, readFirstEntry, type TarInput } from '@statebox/adapter-kit';
import {
  FileNotFoundError,
  FileTooLargeError,
  InvalidPathError,
  InvalidStateError,
  ProviderError,
  type ReadFileOptions,
  TimeoutError,
  type WriteFileOptions,
} from '@statebox/core';
import { DockerApiError, ResponseTooLargeError } from './client.js';
import { isNoSuchContainer, scrubHostPaths } from './errors.js';
import { runInside } from './exec.js';
import { containerName, type FileKind, fromGoFileMode, isPendingStart, PROVIDER } from './labels.js';
import type { Sandboxes } from './sandboxes.js';

type Stat = { kind: FileKind; permissions: number; size: number; linkTarget: string };

const MAX_SYMLINK_HOPS = 40;
/** Room for the tar headers around a file's bytes in an archive answer (PAX records for long names). */
const ARCHIVE_OVERHEAD = 64 * 1024;

/**
 * Renames the uploaded temporary file over the target, inside the sandbox, so the target always holds
 * the old content or the new. Arguments: temporary path, target path, mode (octal), directory. The owner of an
 * existing target is kept; a temporary file older than 10 minutes in the same directory (left by a
 * writer killed between upload and rename) is removed.
 */
const RENAME_SCRIPT = [
  'tmp=$1 target=$2',
  'if [ -d "$target" ] && [ ! -L "$target" ]; then rm -f -- "$tmp"; echo "$target is a directory" >&2; exit 21; fi',
  'if [ -e "$target" ]; then owner=$(stat -c %u:%g -- "$target" 2>/dev/null) && chown "$owner" -- "$tmp" 2>/dev/null; fi',
  'chmod "$3" -- "$tmp" && mv -f -T -- "$tmp" "$target" || { status=$?; rm -f -- "$tmp"; exit $status; }',
  'for old in "$4"/.statebox-write-*; do',
  '  [ -e "$old" ] && find "$4" -maxdepth 1 -name ".statebox-write-*" -mmin +10 -exec rm -f {} + 2>/dev/null',
  '  break',
  'done',
  'exit 0',
].join('\n');

/**
 * Stats a path through the archive endpoint's HEAD (the daemon resolves it inside the container, so a
 * symlink never leads to the host): undefined when it does not exist.
 */
async function stat(
  sandboxes: Sandboxes,
  sandboxId: string,
  path: string,
  operation: string,
  signal: AbortSignal,
): Promise<Stat | undefined> {
  let response: { status: number; headers: Record<string, string | string[] | undefined> };
  try {
    response = await sandboxes.client.head(
      `/containers/${containerName(sandboxId)}/archive`,
      { path },
      signal,
    );
  } catch (error) {
    if (signal.aborted) throw error;
    throw await sandboxes.explain(error, sandboxId, operation);
  }
  if (response.status === 404) {
    // HEAD has no body, so "no such container" and "no such file" look alike: tell them apart.
    await sandboxes.inspect(sandboxId, operation);
    return undefined;
  }
  const header = response.headers['x-docker-container-path-stat'];
  if (response.status >= 400 || typeof header !== 'string') {
    throw sandboxes.error(
      new DockerApiError(response.status, `cannot stat ${path}`, 'archive'),
      operation,
      sandboxId,
    );
  }
  const parsed = JSON.parse(Buffer.from(header, 'base64').toString('utf8')) as {
    mode: number;
    size: number;
    linkTarget?: string;
  };
  return { ...fromGoFileMode(parsed.mode), size: parsed.size, linkTarget: parsed.linkTarget ?? '' };
}

/** Follows symlinks (resolved inside the sandbox by the daemon) to the file they name. */
async function resolve(
  sandboxes: Sandboxes,
  sandboxId: string,
  path: string,
  operation: string,
  signal: AbortSignal,
): Promise<{ target: string; stat: Stat | undefined }> {
  let target = path;
  refuseRuntimeMount(path, target, sandboxId, operation);
  let current = await stat(sandboxes, sandboxId, target, operation, signal);
  for (let hops = 0; current?.kind === 'symlink'; hops++) {
    if (hops >= MAX_SYMLINK_HOPS) {
      throw new InvalidPathError(path, 'too many levels of symbolic links.', { sandboxId, operation });
    }
    // The daemon reports where the whole chain leads (absolute, inside the container).
    target = current.linkTarget.startsWith('/')
      ? current.linkTarget
      : posix.resolve(posix.dirname(target), current.linkTarget);
    refuseRuntimeMount(path, target, sandboxId, operation);
    current = await stat(sandboxes, sandboxId, target, operation, signal);
  }
  return { target, stat: current };
}

/**
 * The kernel's and the runtime's filesystems: the archive endpoint sees the image's directories under them,
 * not what the sandbox's processes see, so they are refused rather than answered wrongly.
 */
const RUNTIME_MOUNTS = ['/dev', '/proc', '/sys'];

function refuseRuntimeMount(path: string, target: string, sandboxId: string, operation: string): void {
  const mount = RUNTIME_MOUNTS.find((prefix) => target === prefix || target.startsWith(`${prefix}/`));
  if (!mount) return;
  throw new InvalidPathError(
    path,
    `${target === path ? 'it' : `it leads to ${target}, which`} is under ${mount}, the kernel's devices and pseudo-files, ` +
      `not a regular file of the sandbox. Use exec(['cat', ${JSON.stringify(target)}]) for those.`,
    { sandboxId, operation },
  );
}

function refuseSpecial(path: string, kind: FileKind, sandboxId: string, operation: string): void {
  if (kind === 'file') return;
  const reason =
    kind === 'directory'
      ? `it is a directory, not a file. List it with exec(["ls", "-la", ${JSON.stringify(path)}]).`
      : `it is a ${kind === 'fifo' ? 'FIFO' : kind === 'other' ? 'special file' : kind}, not a regular file; ` +
        `${operation} only handles regular files. Use exec() to talk to it.`;
  throw new InvalidPathError(path, reason, { sandboxId, operation });
}

/** Runs `task` with a signal that aborts on the caller's signal or after `timeoutMs` (TimeoutError). */
async function bounded<T>(
  operation: string,
  sandboxId: string,
  options: { timeoutMs?: number | undefined; signal?: AbortSignal | undefined },
  task: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  options.signal?.throwIfAborted();
  const controller = new AbortController();
  const timeout = new TimeoutError(operation, options.timeoutMs ?? 0, { sandboxId });
  const onAbort = () => controller.abort(options.signal?.reason);
  options.signal?.addEventListener('abort', onAbort, { once: true });
  const timer =
    options.timeoutMs === undefined
      ? undefined
      : setTimeout(() => controller.abort(timeout), options.timeoutMs);
  try {
    return await task(controller.signal);
  } catch (error) {
    if (controller.signal.aborted) throw controller.signal.reason;
    throw error;
  } finally {
    if (timer) clearTimeout(timer);
    options.signal?.removeEventListener('abort', onAbort);
  }
}

export async function readSandboxFile(
  sandboxes: Sandboxes,
  sandboxId: string,
  path: string,
  options: ReadFileOptions,
): Promise<Uint8Array> {
  const operation = 'readFile';
  return await bounded(operation, sandboxId, options, async (signal) => {
    for (let attempt = 0; attempt < MAX_SYMLINK_HOPS; attempt++) {
      const { target, stat: found } = await resolve(sandboxes, sandboxId, path, operation, signal);
      if (!found) throw new FileNotFoundError(path, { sandboxId, operation });
      refuseSpecial(path, found.kind, sandboxId, operation);
      if (found.size > options.maxBytes) {
        throw new FileTooLargeError(path, found.size, options.maxBytes, { sandboxId, operation });
      }
      let archive: Uint8Array;
      try {
        ({ body: archive } = await sandboxes.client.request<Uint8Array>(
          'GET',
          `/containers/${containerName(sandboxId)}/archive`,
          { query: { path: target }, binary: true, signal, maxBytes: options.maxBytes + ARCHIVE_OVERHEAD },
        ));
      } catch (error) {
        if (signal.aborted) throw error;
        if (error instanceof ResponseTooLargeError) {
          // It grew between the stat and the read.
          throw new FileTooLargeError(path, error.received, options.maxBytes, { sandboxId, operation });
        }
        if (error instanceof DockerApiError && error.status === 404 && !isNoSuchContainer(error)) {
          throw new FileNotFoundError(path, { sandboxId, operation });
        }
        throw await sandboxes.explain(error, sandboxId, operation);
      }
      const entry = await readFirstEntry(archive);
      if (!entry) throw new FileNotFoundError(path, { sandboxId, operation });
      // Replaced by a symlink between the stat and the read: resolve again.
      if (entry.type === 'symlink') continue;
      refuseSpecial(
        path,
        entry.type === 'file' ? 'file' : entry.type === 'directory' ? 'directory' : 'other',
        sandboxId,
        operation,
      );
      if (entry.data.byteLength > options.maxBytes) {
        throw new FileTooLargeError(path, entry.data.byteLength, options.maxBytes, { sandboxId, operation });
      }
      return entry.data;
    }
    throw new InvalidPathError(path, 'it kept changing into a symbolic link while being read.', {
      sandboxId,
      operation,
    });
  });
}

/**
 * Writes atomically: the bytes go to a temporary file next to the target (an archive upload), which a
 * rename inside the sandbox then puts in place. A symlink is followed inside the sandbox first, so its
 * target is replaced and the link stays.
 */
export async function writeSandboxFile(
  sandboxes: Sandboxes,
  sandboxId: string,
  path: string,
  data: Uint8Array,
  options: WriteFileOptions,
): Promise<void> {
  const operation = 'writeFile';
  await sandboxes.locks.idle(sandboxId);
  await bounded(operation, sandboxId, options, async (signal) => {
    const { target, stat: existing } = await resolve(sandboxes, sandboxId, path, operation, signal);
    if (existing) refuseSpecial(path, existing.kind, sandboxId, operation);
    const mode = options.mode ?? existing?.permissions ?? 0o644;
    const container = await sandboxes.inspect(sandboxId, operation);
    if (isPendingStart(container)) {
      await sandboxes.start(container.Id, container.HostConfig.NetworkMode, sandboxId, operation);
    } else if (!container.State.Running || container.State.Paused) {
      throw new InvalidStateError(
        sandboxId,
        operation,
        'suspended',
        'Call resume() first: a write is an upload and a rename, and the rename runs inside the sandbox.',
      );
    }
    // Extract at the deepest existing ancestor, creating the missing directories from the archive:
    // PUT into a missing directory is a 404, and listing existing ones in the archive would reset their modes.
    const missing: string[] = [];
    let directory = posix.dirname(target);
    while (!existing && directory !== '/') {
      const found = await stat(sandboxes, sandboxId, directory, operation, signal);
      if (found) {
        if (found.kind === 'symlink') {
          // A symlinked parent: upload into where it leads, as open(2) would.
          const resolved = await resolve(sandboxes, sandboxId, directory, operation, signal);
          if (resolved.stat?.kind === 'directory') break;
        }
        if (found.kind !== 'directory') {
          throw new InvalidPathError(path, `${directory} is not a directory.`, { sandboxId, operation });
        }
        break;
      }
      missing.unshift(directory);
      directory = posix.dirname(directory);
    }
    const base = directory;
    const temporary = posix.join(posix.dirname(target), `.statebox-write-${randomHex(8)}`);
    const entries: TarInput[] = [
      ...missing.map((dir) => ({ name: posix.relative(base, dir), type: 'directory' as const, mode: 0o755 })),
      { name: posix.relative(base, temporary), type: 'file', mode, data },
    ];
    const archive = await packTar(entries);
    try {
      await sandboxes.client.request('PUT', `/containers/${containerName(sandboxId)}/archive`, {
        query: { path: base },
        raw: archive,
        signal,
      });
    } catch (error) {
      if (signal.aborted) {
        void runInside(sandboxes, sandboxId, operation, ['rm', '-f', '--', temporary]).catch(() => undefined);
        throw error;
      }
      throw await sandboxes.explain(error, sandboxId, operation);
    }
    // Past this point the write completes: a rename is quick, and stopping it half-way is not possible.
    signal.throwIfAborted();
    const renamed = await runInside(sandboxes, sandboxId, operation, [
      '/bin/sh',
      '-c',
      RENAME_SCRIPT,
      'statebox-write',
      temporary,
      target,
      (mode & 0o7777).toString(8),
      posix.dirname(target),
    ]);
    if (renamed.exitCode === 21) {
      throw new InvalidPathError(path, 'it is a directory; writeFile needs a file path.', {
        sandboxId,
        operation,
      });
    }
    if (renamed.exitCode !== 0) {
      throw new ProviderError(
        PROVIDER,
        `writeFile(${path}) in sandbox ${sandboxId}: renaming the uploaded file into place failed ` +
          `(exit ${renamed.exitCode}: ${scrubHostPaths(renamed.stderr.trim(), sandboxes.options.stateDir)}). ` +
          'The file keeps its old content; the image needs /bin/sh, stat, chmod and mv.',
        { sandboxId, operation },
      );
    }
  });
}

import { randomBytes } from 'node:crypto';
import {
  FileNotFoundError,
  FileTooLargeError,
  InvalidPathError,
  ProviderError,
  type ReadFileOptions,
  TimeoutError,
  type WriteFileOptions,
} from '@statebox/core';
import { httpStatus, PROVIDER } from './errors.js';
import { type ExecContext, interrupted } from './exec.js';
import { STAT, WRITE } from './scripts.js';

/**
 * A read of a file up to this size comes back inside the stat request (base64): one request instead of
 * two, cheaper than the raw GET up to a few MiB on the emulator (benchmarks/results/latest-tensorlake.json).
 */
const INLINE_READ_BYTES = 2 * 1024 * 1024;
/** Data up to this size rides in the write request's argv (Linux allows 128 KiB per argument). */
const INLINE_WRITE_BYTES = 48 * 1024;

/**
 * readFile: the daemon's `GET /api/v1/files` would block on a FIFO and has no size limit, so a STAT
 * request looks first (following symlinks inside the sandbox) and refuses a directory, a FIFO, a socket
 * or a device, or a file over `maxBytes`, before anything is read. A file up to 2 MiB comes back in that
 * same request; a larger one is then read raw.
 */
export async function readSandboxFile(
  context: ExecContext,
  sandboxId: string,
  path: string,
  options: ReadFileOptions,
): Promise<Uint8Array> {
  return bounded('readFile', sandboxId, options, async () => {
    const stat = await script(context, sandboxId, 'readFile', [
      STAT,
      path,
      String(Math.min(INLINE_READ_BYTES, options.maxBytes)),
    ]);
    const [kind = '', ...rest] = stat.split('\n')[0]!.split(' ');
    if (kind === 'missing') throw new FileNotFoundError(path, { sandboxId, operation: 'readFile' });
    if (kind === 'directory') {
      throw new InvalidPathError(path, 'it is a directory; readFile reads regular files', {
        sandboxId,
        operation: 'readFile',
      });
    }
    if (kind === 'special') {
      throw new InvalidPathError(path, `it is a ${rest.join(' ')}, not a regular file`, {
        sandboxId,
        operation: 'readFile',
      });
    }
    const size = Number(rest[0]);
    if (kind !== 'file' || !Number.isSafeInteger(size)) {
      throw new ProviderError(
        PROVIDER,
        `readFile ${path} in sandbox ${sandboxId}: unexpected answer ${JSON.stringify(stat.slice(0, 80))}`,
        { sandboxId, operation: 'readFile' },
      );
    }
    if (size > options.maxBytes) {
      throw new FileTooLargeError(path, size, options.maxBytes, { sandboxId, operation: 'readFile' });
    }
    if (size <= INLINE_READ_BYTES) {
      const newline = stat.indexOf('\n');
      const encoded = newline === -1 ? '' : stat.slice(newline + 1);
      return new Uint8Array(Buffer.from(encoded.replace(/\s+/g, ''), 'base64'));
    }
    try {
      const bytes = await context.client.readFile(sandboxId, path);
      if (bytes.byteLength > options.maxBytes) {
        // Grew between the look and the read.
        throw new FileTooLargeError(path, bytes.byteLength, options.maxBytes, {
          sandboxId,
          operation: 'readFile',
        });
      }
      return bytes;
    } catch (error) {
      if (httpStatus(error) === 404)
        throw new FileNotFoundError(path, { sandboxId, operation: 'readFile', cause: error });
      throw await interrupted(error, context, sandboxId, 'readFile');
    }
  });
}

/**
 * writeFile: the daemon's `PUT` writes in place (a reader could see half a file) and sets no mode, so
 * the WRITE script resolves symlinks, refuses what is not a regular file, creates parent directories and
 * renames a complete temporary file over the target with its mode. Data up to 48 KiB rides in that one
 * request; larger data is first staged raw beside the target (`stage`).
 */
export async function writeSandboxFile(
  context: ExecContext,
  sandboxId: string,
  path: string,
  data: Uint8Array,
  options: WriteFileOptions,
): Promise<void> {
  const mode = options.mode === undefined ? '' : (options.mode & 0o7777).toString(8);
  await bounded('writeFile', sandboxId, options, async (isCancelled) => {
    const token = randomBytes(9).toString('hex');
    let source = '-';
    let inline = '';
    if (data.byteLength > INLINE_WRITE_BYTES) {
      source = await stage(context, sandboxId, path, token, data);
    } else inline = Buffer.from(data).toString('base64');
    // Past the deadline nothing is committed: the file keeps its old content.
    if (isCancelled()) {
      if (source !== '-') void context.client.run(sandboxId, '/bin/rm', ['-f', '--', source]).catch(() => {});
      return;
    }
    const answer = await script(
      context,
      sandboxId,
      'writeFile',
      [WRITE, path, mode, source, token, inline],
      [3],
    );
    if (answer.exitCode === 3) {
      throw new InvalidPathError(
        path,
        `it is ${describeKind(answer.stdout)}; writeFile writes regular files`,
        {
          sandboxId,
          operation: 'writeFile',
        },
      );
    }
  });
}

/**
 * PUTs large data to a temporary name in the target's directory, where the WRITE script renames it
 * over the target without copying it (a rename across mounts, e.g. from the adapter's directory to
 * /workspace, is a copy). Where that fails (no such directory and the daemon would not create it, a
 * read-only directory), it stages in the adapter's directory instead and the script moves it.
 */
async function stage(
  context: ExecContext,
  sandboxId: string,
  path: string,
  token: string,
  data: Uint8Array,
): Promise<string> {
  const beside = `${path.slice(0, path.lastIndexOf('/'))}/.statebox-write-${token}`;
  try {
    await context.client.writeFile(sandboxId, beside, data);
    return beside;
  } catch {
    const fallback = `${context.stateDir}/x/${token}.write`;
    await context.client.writeFile(sandboxId, fallback, data).catch(async (error: unknown) => {
      throw await interrupted(error, context, sandboxId, 'writeFile');
    });
    return fallback;
  }
}

function describeKind(kind: string): string {
  const text = kind.trim();
  return text === 'directory' ? 'a directory' : `a ${text || 'special file'}`;
}

/** Runs a script; a non-zero exit (other than `allowed`) is a ProviderError with its stderr. */
async function script(
  context: ExecContext,
  sandboxId: string,
  operation: string,
  args: string[],
): Promise<string>;
async function script(
  context: ExecContext,
  sandboxId: string,
  operation: string,
  args: string[],
  allowed: number[],
): Promise<{ exitCode: number; stdout: string }>;
async function script(
  context: ExecContext,
  sandboxId: string,
  operation: string,
  [body, ...args]: string[],
  allowed?: number[],
): Promise<string | { exitCode: number; stdout: string }> {
  let result: { exitCode: number; stdout: string; stderr: string };
  try {
    result = await context.client.run(sandboxId, '/bin/sh', ['-c', body!, 'statebox', ...args]);
  } catch (error) {
    throw await interrupted(error, context, sandboxId, operation);
  }
  if (result.exitCode !== 0 && !allowed?.includes(result.exitCode)) {
    throw new ProviderError(
      PROVIDER,
      `${operation} in sandbox ${sandboxId} failed (exit ${result.exitCode}): ${result.stderr.slice(0, 500)}`,
      { sandboxId, operation },
    );
  }
  return allowed ? { exitCode: result.exitCode, stdout: result.stdout } : result.stdout;
}

/** Applies `timeoutMs` and `signal` to a file operation; the work is told when it was given up on. */
async function bounded<T>(
  operation: string,
  sandboxId: string,
  options: { timeoutMs?: number | undefined; signal?: AbortSignal | undefined },
  work: (isCancelled: () => boolean) => Promise<T>,
): Promise<T> {
  options.signal?.throwIfAborted();
  let cancelled = false;
  const stops: Promise<never>[] = [];
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  if (options.timeoutMs !== undefined) {
    const timeoutMs = options.timeoutMs;
    stops.push(
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          cancelled = true;
          reject(new TimeoutError(operation, timeoutMs, { sandboxId }));
        }, timeoutMs);
      }),
    );
  }
  if (options.signal) {
    const signal = options.signal;
    stops.push(
      new Promise<never>((_, reject) => {
        onAbort = () => {
          cancelled = true;
          reject(signal.reason);
        };
        signal.addEventListener('abort', onAbort, { once: true });
      }),
    );
  }
  const running = work(() => cancelled);
  if (stops.length === 0) return running;
  running.catch(() => undefined);
  try {
    return await Promise.race([running, ...stops]);
  } finally {
    if (timer) clearTimeout(timer);
    if (onAbort) options.signal?.removeEventListener('abort', onAbort);
  }
}

import { randomUUID } from 'node:crypto';
import {
  FileNotFoundError,
  FileTooLargeError,
  InvalidPathError,
  ProviderError,
  type ReadFileOptions,
  TimeoutError,
  type WriteFileOptions,
} from '@statebox/core';
import type { DaytonaClient } from './client.js';
import { fromBase64, INLINE_BYTES, shCommand, shellQuote, toBase64 } from './script.js';

/** Files up to this size come back inline with the type check: one round trip instead of two. */
const INLINE_READ_BYTES = 1024 * 1024;

/** Paths the SDK's multipart parser matches byte-for-byte; others are read through an ASCII-named copy. */
const plainPath = /^[A-Za-z0-9._/ +=,@-]+$/;

type Classify = (error: unknown, path?: string) => Promise<Error>;

/** Runs `work` under the caller's timeout and signal; past either, the rest of the work is never started. */
async function bounded<T>(
  sandboxId: string,
  operation: string,
  options: { timeoutMs?: number | undefined; signal?: AbortSignal | undefined },
  work: (live: () => void, check: () => void) => Promise<T>,
): Promise<T> {
  options.signal?.throwIfAborted();
  let stop: unknown;
  let committed = false;
  // Called just before the step that makes the work visible: past it, a timeout or abort no longer
  // rejects (the caller sees the new content, never a rejection with the change landing behind it).
  const live = () => {
    if (stop !== undefined) throw stop;
    committed = true;
  };
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  const limit = new Promise<never>((_, reject) => {
    if (options.timeoutMs) {
      timer = setTimeout(() => {
        if (committed) return;
        stop = new TimeoutError(operation, options.timeoutMs!, { sandboxId });
        reject(stop);
      }, options.timeoutMs);
    }
    if (options.signal) {
      onAbort = () => {
        if (committed) return;
        stop = options.signal!.reason;
        reject(stop);
      };
      options.signal.addEventListener('abort', onAbort, { once: true });
    }
  });
  limit.catch(() => undefined);
  try {
    const check = () => {
      if (stop !== undefined) throw stop;
    };
    return await Promise.race([work(live, check), limit]);
  } finally {
    if (timer) clearTimeout(timer);
    if (onAbort) options.signal?.removeEventListener('abort', onAbort);
  }
}

/**
 * Checks the path in the sandbox and, for a small file, returns it in the same call: exit 3 missing,
 * 4 a directory, 5 not a regular file (FIFO, socket, device: refused without opening it).
 */
function statScript(path: string, inlineMax: number, copyTo: string | undefined): string {
  const p = shellQuote(path);
  return [
    `if [ ! -e ${p} ]; then exit 3; fi`,
    `if [ -d ${p} ]; then exit 4; fi`,
    `if [ ! -f ${p} ]; then exit 5; fi`,
    `n=$(stat -L -c %s -- ${p}) || exit 6`,
    'printf "size %s\\n" "$n"',
    `if [ "$n" -le ${inlineMax} ]; then base64 -w0 -- ${p} || exit 6; printf "\\n"; exit 0; fi`,
    copyTo ? `cp -- ${p} ${shellQuote(copyTo)} || exit 6; printf "copy\\n"` : 'true',
  ].join('\n');
}

export async function readFile(
  client: DaytonaClient,
  sandboxId: string,
  path: string,
  options: ReadFileOptions,
  classify: Classify,
): Promise<Uint8Array> {
  return bounded(sandboxId, 'readFile', options, async (_live, check) => {
    const copy = plainPath.test(path) ? undefined : `/tmp/.statebox-read-${randomUUID()}`;
    const inlineMax = Math.min(INLINE_READ_BYTES, options.maxBytes);
    let response: { exitCode: number; result: string };
    try {
      response = await client.run(sandboxId, shCommand(statScript(path, inlineMax, copy)));
    } catch (error) {
      throw await classify(error);
    }
    check();
    const lines = response.result.split('\n');
    if (response.exitCode === 3) throw new FileNotFoundError(path, { sandboxId, operation: 'readFile' });
    if (response.exitCode === 4)
      throw new InvalidPathError(path, 'it is a directory; read a file in it', { sandboxId });
    if (response.exitCode === 5) {
      throw new InvalidPathError(
        path,
        'it is not a regular file (a FIFO, socket or device); statebox reads regular files only',
        {
          sandboxId,
        },
      );
    }
    const sizeLine = lines.find((line) => line.startsWith('size '));
    if (response.exitCode !== 0 || !sizeLine) {
      throw new ProviderError(
        'daytona',
        `readFile ${path} in sandbox ${sandboxId} failed: ${response.result.slice(0, 300)}`,
        {
          sandboxId,
          operation: 'readFile',
        },
      );
    }
    const size = Number(sizeLine.slice(5));
    if (size > options.maxBytes) throw new FileTooLargeError(path, size, options.maxBytes, { sandboxId });
    if (size <= inlineMax) {
      const data = fromBase64(lines[lines.indexOf(sizeLine) + 1] ?? '');
      if (data.byteLength !== size) {
        throw new ProviderError(
          'daytona',
          `readFile ${path}: changed while it was read (${data.byteLength} of ${size} bytes)`,
        );
      }
      return data;
    }
    const source = copy ?? path;
    try {
      return await client.download(sandboxId, source);
    } catch (error) {
      throw await classify(error, path);
    } finally {
      if (copy) await client.run(sandboxId, `rm -f ${shellQuote(copy)}`).catch(() => undefined);
    }
  });
}

/**
 * Puts `staged` (already in the sandbox) in place of `path` atomically: follows a symlink to its target,
 * refuses a directory or special file, creates the parents, keeps or sets the mode, and renames a file
 * beside the target over it (so other hard links keep the old content). Few spawns, each costing about a
 * millisecond in a sandbox: `readlink` only when the path is a symlink or its parent is not a directory,
 * `chmod` only when a mode is set or kept (a new file written inline gets 0644 from the umask), `mv` to
 * bring a staged file beside the target only when it was staged elsewhere, and the final `mv`.
 */
function commitScript(
  path: string,
  staged: string | undefined,
  inline: string | undefined,
  mode: number | undefined,
): string {
  const s = staged ? shellQuote(staged) : '';
  const drop = staged ? `rm -f ${s}; ` : '';
  const fresh = `"$dir/.statebox-write-$$-${randomUUID().slice(0, 8)}"`;
  const fill =
    inline !== undefined
      ? `n=${fresh}; printf %s ${shellQuote(inline)} | base64 -d > "$n"`
      : `if [ ${shellQuote(staged!.slice(0, staged!.lastIndexOf('/')) || '/')} = "$dir" ]; then n=${s}; else n=${fresh}; mv -f -- ${s} "$n"; fi`;
  return [
    'umask 022',
    `r=${shellQuote(path)}`,
    `if [ -L "$r" ] || [ ! -d "\${r%/*}/" ]; then r=$(readlink -m -- ${shellQuote(path)}) || { ${drop}exit 6; }; fi`,
    `if [ -d "$r" ]; then ${drop}exit 4; fi`,
    `if [ -e "$r" ] && [ ! -f "$r" ]; then ${drop}exit 5; fi`,
    // biome-ignore lint/suspicious/noTemplateCurlyInString: shell parameter expansion, not a template.
    'dir=${r%/*}; [ -n "$dir" ] || dir=/',
    `[ -d "$dir" ] || mkdir -p -- "$dir" 2>/dev/null || { ${drop}exit 7; }`,
    `${fill} || { ${drop}rm -f "$n"; exit 6; }`,
    mode !== undefined
      ? `chmod ${mode.toString(8)} "$n"`
      : `if [ -f "$r" ]; then chmod --reference="$r" "$n";${staged ? ' else chmod 644 "$n";' : ''} fi`,
    'mv -f -- "$n" "$r" || { rm -f "$n"; exit 6; }',
  ].join('\n');
}

/**
 * Uploads large data to a temporary name in the target's directory, where the commit renames it over the
 * target without copying (a rename from /tmp to /workspace crosses mounts here, which makes `mv` copy).
 * Where that upload fails (a parent that is a file, no permission), it stages in /tmp instead.
 */
async function stage(client: DaytonaClient, sandboxId: string, path: string, data: Uint8Array) {
  const id = randomUUID();
  const beside = `${path.slice(0, path.lastIndexOf('/'))}/.statebox-write-${id}`;
  if (plainPath.test(beside)) {
    try {
      await client.upload(sandboxId, data, beside);
      return beside;
    } catch {
      // Staged in /tmp below.
    }
  }
  const fallback = `/tmp/.statebox-upload-${id}`;
  await client.upload(sandboxId, data, fallback);
  return fallback;
}

export async function writeFile(
  client: DaytonaClient,
  sandboxId: string,
  path: string,
  data: Uint8Array,
  options: WriteFileOptions,
  classify: Classify,
): Promise<void> {
  await bounded(sandboxId, 'writeFile', options, async (live) => {
    // Small files travel inside the command (one round trip); larger ones are uploaded first.
    const inline = data.byteLength <= INLINE_BYTES;
    let staged: string | undefined;
    try {
      if (!inline) staged = await stage(client, sandboxId, path, data);
    } catch (error) {
      throw await classify(error);
    }
    const script = commitScript(path, staged, inline ? toBase64(data) : undefined, options.mode);
    try {
      live();
    } catch (stop) {
      // Given up on (timeout or abort) while uploading: nothing is committed, and the staged copy goes.
      if (staged) void client.run(sandboxId, `rm -f -- ${shellQuote(staged)}`).catch(() => undefined);
      throw stop;
    }
    let response: { exitCode: number; result: string };
    try {
      response = await client.run(sandboxId, shCommand(script));
    } catch (error) {
      throw await classify(error);
    }
    if (response.exitCode === 4) throw new InvalidPathError(path, 'it is a directory', { sandboxId });
    if (response.exitCode === 5) {
      throw new InvalidPathError(path, 'it is a FIFO, socket or device; statebox writes regular files only', {
        sandboxId,
      });
    }
    if (response.exitCode === 7) {
      throw new InvalidPathError(path, 'its parent directory cannot be created (a parent is a file?)', {
        sandboxId,
      });
    }
    if (response.exitCode !== 0) {
      throw new ProviderError(
        'daytona',
        `writeFile ${path} in sandbox ${sandboxId} failed: ${response.result.slice(0, 300)}`,
        {
          sandboxId,
          operation: 'writeFile',
        },
      );
    }
  });
}

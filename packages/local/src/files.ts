import { randomBytes } from 'node:crypto';
import {
  type ExecOutput,
  type ExecRequest,
  FileTooLargeError,
  type ReadFileOptions,
  TimeoutError,
  type WriteFileOptions,
} from '@statebox/core';
import { fileError } from './errors.js';

/**
 * readFile and writeFile run as commands inside the sandbox, so every path, `..` and symlink resolves
 * against the sandbox's own root: a link to /etc/shadow finds the sandbox's /etc, never the host's.
 */
export type RunInSandbox = (request: ExecRequest) => Promise<ExecOutput>;

/**
 * $1 path, $2 the most bytes to return. Refuses what is not a regular file before opening it (a FIFO
 * would block, a device never end), checks the size first, and reads with `dd iflag=nonblock` and a byte
 * count, so a file swapped for a FIFO in between fails instead of blocking, and one that grows while
 * read still stops at the cap.
 * Exit codes: 100 missing, 101 a directory, 103 not a regular file (kind on stderr), 104 too large (size on stderr).
 */
const readScript = `if [ -d "$1" ]; then exit 101; fi
if [ ! -e "$1" ]; then exit 100; fi
if [ ! -f "$1" ]; then
  if [ -p "$1" ]; then echo FIFO; elif [ -S "$1" ]; then echo socket; elif [ -c "$1" ] || [ -b "$1" ]; then echo device; else echo special; fi >&2
  exit 103
fi
size=$(stat -L -c %s -- "$1") || exit 1
if [ "$size" -gt "$2" ]; then echo "$size" >&2; exit 104; fi
exec dd if="$1" iflag=nonblock,count_bytes count="$(($2 + 1))" bs=1M status=none`;

/**
 * $1 path, $2 octal mode or empty, $3 the byte count expected on stdin, $4 the phase (`write`: all of it;
 * `stage`: only the temporary file; `commit`: only the rename of a staged one; `discard`: remove a staged
 * one), $5 the temporary file's
 * token. Writes a temporary file next to
 * the target and renames it over the target, so a reader, a crash or a suspend sees the old content or
 * the new, never a mix; a short input (the caller died mid-write) is discarded, not renamed. A symlink is
 * followed inside the sandbox (a dangling one creates its target). Without a mode, an existing file
 * keeps its mode and a new one gets 0644.
 * Exit codes: 101 a directory, 102 a parent is not a directory, 103 not a regular file, 105 input cut short.
 */
const writeScript = `umask 022
target=$1
if [ -L "$target" ]; then target=$(readlink -m -- "$target") || exit 1; fi
if [ -d "$target" ]; then exit 101; fi
if [ -e "$target" ] && [ ! -f "$target" ]; then
  if [ -p "$target" ]; then echo FIFO; elif [ -S "$target" ]; then echo socket; else echo device; fi >&2
  exit 103
fi
case "$target" in */*) parent="\${target%/*}"; [ -n "$parent" ] || parent=/ ;; *) parent=. ;; esac
name=\${target##*/}
temporary="$parent/.$name.statebox-$5"
if [ "$4" = discard ]; then exec rm -f -- "$temporary"; fi
if [ "$4" != commit ]; then
  if [ ! -d "$parent" ]; then mkdir -p -- "$parent" 2>&1 >&2 || exit 102; fi
  # Temporary files of writes that a suspend or a kill cut short, once surely abandoned.
  find "$parent" -maxdepth 1 -name '.*.statebox-*' -type f -mmin +10 -delete 2>/dev/null
  trap 'rm -f -- "$temporary"' EXIT
  # A caller that died leaves pipes without a reader: its SIGPIPE would skip the EXIT trap.
  trap 'exit 1' HUP PIPE TERM
  ( set -C; : > "$temporary" ) || exit 1
  cat > "$temporary" || exit 1
fi
written=$(stat -c %s -- "$temporary") || exit 1
if [ "$written" != "$3" ]; then echo "received $written of $3 bytes" >&2; exit 105; fi
if [ "$4" = stage ]; then trap - EXIT; exit 0; fi
if [ -n "$2" ]; then chmod "$2" -- "$temporary" || exit 1
elif [ -f "$target" ]; then chmod --reference="$target" -- "$temporary" || exit 1
else chmod 644 -- "$temporary" || exit 1
fi
mv -fT -- "$temporary" "$target" || exit 1
trap - EXIT`;

export async function readSandboxFile(
  run: RunInSandbox,
  context: { sandboxId: string; provider: string },
  path: string,
  options: ReadFileOptions,
): Promise<Uint8Array> {
  const output = await run({
    command: ['/bin/sh', '-c', readScript, 'statebox-readFile', path, String(options.maxBytes)],
    cwd: '/',
    // One byte over the cap shows a file that grew past it while being read.
    maxOutputBytes: options.maxBytes + 1,
    ...(options.timeoutMs !== undefined && { timeoutMs: options.timeoutMs }),
    ...(options.signal && { signal: options.signal }),
  });
  if (output.exitCode === 0 && !output.truncated.stdout && output.stdout.byteLength <= options.maxBytes) {
    return output.stdout;
  }
  if (output.exitCode === 0 || output.exitCode === 104) {
    const reported = Number(new TextDecoder().decode(output.stderr).trim());
    const size = Number.isFinite(reported) && reported > 0 ? reported : options.maxBytes + 1;
    throw new FileTooLargeError(path, size, options.maxBytes, {
      sandboxId: context.sandboxId,
      operation: 'readFile',
    });
  }
  throw fileError(output, context, 'readFile', path);
}

export async function writeSandboxFile(
  run: RunInSandbox,
  context: { sandboxId: string; provider: string },
  path: string,
  data: Uint8Array,
  options: WriteFileOptions,
): Promise<void> {
  const mode = options.mode === undefined ? '' : options.mode.toString(8);
  const token = randomBytes(6).toString('hex');
  const command = (phase: 'write' | 'stage' | 'commit' | 'discard') => [
    '/bin/sh',
    '-c',
    writeScript,
    'statebox-writeFile',
    path,
    mode,
    String(data.byteLength),
    phase,
    token,
  ];
  const fail = (output: ExecOutput) => {
    if (output.exitCode !== 0) throw fileError(output, context, 'writeFile', path);
  };
  if (options.timeoutMs === undefined && !options.signal) {
    fail(await run({ command: command('write'), cwd: '/', stdin: data, maxOutputBytes: 64 * 1024 }));
    return;
  }
  // With a deadline or a signal, the write is staged under them and committed (one rename) after: a
  // rejected call then always leaves the old content, and a resolved one the new.
  const deadline = options.timeoutMs === undefined ? undefined : Date.now() + options.timeoutMs;
  try {
    fail(
      await run({
        command: command('stage'),
        cwd: '/',
        stdin: data,
        maxOutputBytes: 64 * 1024,
        ...(options.timeoutMs !== undefined && { timeoutMs: options.timeoutMs }),
        ...(options.signal && { signal: options.signal }),
      }),
    );
    options.signal?.throwIfAborted();
    if (deadline !== undefined && Date.now() > deadline) {
      throw new TimeoutError('writeFile', options.timeoutMs!, { sandboxId: context.sandboxId });
    }
  } catch (error) {
    await run({ command: command('discard'), cwd: '/', maxOutputBytes: 1024 }).catch(() => undefined);
    throw error;
  }
  fail(await run({ command: command('commit'), cwd: '/', maxOutputBytes: 64 * 1024 }));
}

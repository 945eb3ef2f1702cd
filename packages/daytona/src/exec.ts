import { randomUUID } from 'node:crypto';
import { truncationMarker } from '@statebox/adapter-kit';
import {
  type ExecOutput,
  type ExecRequest,
  InvalidStateError,
  ProviderError,
  TimeoutError,
} from '@statebox/core';
import type { DaytonaClient } from './client.js';
import { fromBase64, INLINE_BYTES, shCommand, shellQuote, toBase64 } from './script.js';

/** Every process an exec starts carries this variable, so a timeout or abort can find them all. */
export const EXEC_MARKER = 'STATEBOX_EXEC';

/**
 * The private directory (mode 700) every exec's files go in, made once per sandbox user; an exec that
 * finds it owned by someone else, or a symlink, makes a directory of its own, `<EXEC_DIR>-<execId>`.
 */
export const EXEC_DIR = '/tmp/.statebox-exec';

/**
 * The toolbox's `process/execute` merges stdout and stderr and has no stdin, so each exec runs a small
 * wrapper: the command's streams go to files, and the wrapper prints the exit code and both streams as
 * base64 (head and tail only past the cap). One round trip; byte-exact; stdin inlined (or uploaded first
 * when large). With a timeout or a signal, a watcher beside the command waits for a `kill` file and then
 * kills every process that carries the exec's marker variable (setsid daemons included), from inside the
 * command's own process family, whose environments it may read; without either, nothing can ask for a
 * kill, so there is no watcher (and no polling `sleep`) and the command runs in the foreground.
 *
 * Every process spawned here costs about a millisecond inside a sandbox (benchmarks/README.md, "Where
 * the exec overhead goes"), so the wrapper spawns few: the command, `wc` only when a stream is not empty
 * (into a file read by the `read` builtin: a command substitution would fork once more), `base64` per
 * non-empty stream, and one `rm` at exit. Its files go in a private directory kept between execs
 * (`EXEC_DIR`: no `mkdir` per exec), created with noclobber under the exec's random id.
 */
export function wrapperScript(request: ExecRequest, execId: string, stdinPath: string | undefined): string {
  const cap = request.maxOutputBytes;
  const headCap = Math.ceil(cap / 2);
  const tailCap = cap - headCap;
  const env = Object.entries(request.env ?? {}).map(([key, value]) => shellQuote(`${key}=${value}`));
  const command =
    typeof request.command === 'string'
      ? `/bin/sh -c ${shellQuote(request.command)}`
      : `/bin/sh -c 'exec "$@"' sh ${request.command.map(shellQuote).join(' ')}`;
  const watch = Boolean(request.timeoutMs || request.signal);
  const own = `${EXEC_DIR}-${execId}`;
  const lines = [
    `D=${EXEC_DIR}`,
    `if [ ! -d "$D" ] || [ -L "$D" ] || [ ! -O "$D" ]; then mkdir -m 700 "$D" 2>/dev/null || { D=${own}; mkdir -m 700 "$D" || exit 125; }; fi`,
    `d="$D/${execId}"`,
    `trap 'rm -f "$d.o" "$d.e" "$d.n" "$d.i"${stdinPath ? ` ${shellQuote(stdinPath)}` : ''}${watch ? ' "$d.kill"' : ''}; [ "$D" = ${EXEC_DIR} ] || rmdir "$D"' EXIT`,
    'set -C',
    ': >"$d.o" && : >"$d.e" || exit 125',
  ];
  let input = '/dev/null';
  if (request.stdin && request.stdin.byteLength > 0 && !stdinPath) {
    lines.push(`printf %s ${shellQuote(toBase64(request.stdin))} | base64 -d > "$d.i" || exit 125`);
    input = '"$d.i"';
  } else if (stdinPath) {
    input = shellQuote(stdinPath);
  }
  lines.push('set +C');
  const run = env.length > 0 ? `exec env -- ${env.join(' ')} ${command}` : `exec ${command}`;
  const child = `(cd -- ${shellQuote(request.cwd)} && export ${EXEC_MARKER}=${execId} && ${run}) <${input} >"$d.o" 2>"$d.e"`;
  if (watch) {
    lines.push(
      `${child} &`,
      'p=$!',
      `(while [ ! -e "$d.kill" ]; do sleep 0.1; done; ${killLoop(execId)}) </dev/null >/dev/null 2>&1 &`,
      'w=$!',
      'wait $p',
      'c=$?',
      // Asked to kill: let the watcher finish its sweep (the command's end may be its first kill).
      'if [ -e "$d.kill" ]; then wait $w; else kill $w 2>/dev/null; fi',
    );
  } else {
    lines.push(child, 'c=$?');
  }
  lines.push(
    'if [ -s "$d.o" ] || [ -s "$d.e" ]; then wc -c "$d.o" "$d.e" >"$d.n" && { read so x; read se x; } <"$d.n"; else so=0 se=0; fi',
    'emit() { if [ "$1" -eq 0 ]; then printf "0 \\n"; elif [ "$1" -le ' +
      cap +
      ' ]; then printf "%s " "$1"; base64 -w0 "$2"; printf "\\n"; else printf "%s " "$1"; head -c ' +
      headCap +
      ' "$2" | base64 -w0; printf " "; tail -c ' +
      tailCap +
      ' "$2" | base64 -w0; printf "\\n"; fi; }',
    'printf "statebox-exec %s\\n" "$c"',
    'emit "$so" "$d.o"',
    'emit "$se" "$d.e"',
  );
  return lines.join('\n');
}

/** Kills every process carrying `execId` (repeatedly, so a process forking meanwhile is caught too). */
function killLoop(execId: string): string {
  const marker = shellQuote(`${EXEC_MARKER}=${execId}`);
  return [
    'i=0; while [ $i -lt 50 ]; do found=',
    `for q in /proc/[0-9]*; do if tr '\\0' '\\n' < "$q/environ" 2>/dev/null | grep -qx ${marker}; then kill -9 "\${q#/proc/}" 2>/dev/null && found=1; fi; done`,
    '[ -z "$found" ] && break; i=$((i+1)); sleep 0.05; done',
  ].join('; ');
}

/** Asks the exec's wrapper to kill the command (it does so within about 100 ms). */
export function killScript(execId: string): string {
  return `for d in ${EXEC_DIR} ${EXEC_DIR}-${execId}; do [ -e "$d/${execId}.o" ] && : > "$d/${execId}.kill"; done; true`;
}

type Stream = { bytes: Uint8Array; truncated: boolean };

function parseStream(line: string | undefined, cap: number): Stream {
  if (line === undefined) throw new Error('the exec wrapper ended early');
  const [total, first = '', second] = line.split(' ');
  const size = Number(total);
  if (second === undefined) return { bytes: fromBase64(first), truncated: false };
  const head = fromBase64(first);
  const tail = fromBase64(second);
  const marker = new TextEncoder().encode(truncationMarker(size - head.byteLength - tail.byteLength));
  const bytes = new Uint8Array(head.byteLength + marker.byteLength + tail.byteLength);
  bytes.set(head, 0);
  bytes.set(marker, head.byteLength);
  bytes.set(tail, head.byteLength + marker.byteLength);
  return { bytes, truncated: size > cap };
}

/** Parses the wrapper's three lines: `statebox-exec <code>`, stdout, stderr. */
export function parseWrapperOutput(result: string, cap: number): ExecOutput {
  const lines = result.split('\n');
  const start = lines.findIndex((line) => line.startsWith('statebox-exec '));
  if (start < 0) throw new Error(`unexpected exec output: ${result.slice(0, 200)}`);
  const exitCode = Number(lines[start]!.slice('statebox-exec '.length));
  const stdout = parseStream(lines[start + 1], cap);
  const stderr = parseStream(lines[start + 2], cap);
  return {
    exitCode,
    stdout: stdout.bytes,
    stderr: stderr.bytes,
    truncated: { stdout: stdout.truncated, stderr: stderr.truncated },
  };
}

/**
 * One exec: the wrapper runs through `process/execute`; a timeout or abort kills the marked processes with
 * a second call, after which the wrapper returns what the command wrote so far.
 */
export async function runExec(
  client: DaytonaClient,
  sandboxId: string,
  request: ExecRequest,
  classify: (error: unknown) => Promise<Error>,
): Promise<ExecOutput> {
  request.signal?.throwIfAborted();
  const execId = randomUUID();
  let stdinPath: string | undefined;
  try {
    if (request.stdin && request.stdin.byteLength > INLINE_BYTES) {
      stdinPath = `/tmp/.statebox-stdin-${execId}`;
      await client.upload(sandboxId, request.stdin, stdinPath);
    }
  } catch (error) {
    throw await classify(error);
  }
  request.signal?.throwIfAborted();

  let ended: 'timeout' | 'abort' | undefined;
  let killing: Promise<unknown> | undefined;
  const kill = (why: 'timeout' | 'abort') => {
    if (ended) return;
    ended = why;
    killing = client.run(sandboxId, shCommand(killScript(execId)), 60).catch(() => undefined);
  };
  const timer = request.timeoutMs ? setTimeout(() => kill('timeout'), request.timeoutMs) : undefined;
  const onAbort = () => kill('abort');
  request.signal?.addEventListener('abort', onAbort, { once: true });
  // The daemon's own limit is a backstop for a caller that died before it could kill the command.
  const backstop = request.timeoutMs ? Math.ceil(request.timeoutMs / 1000) + 60 : 0;
  let output: ExecOutput | undefined;
  let failure: unknown;
  try {
    const response = await client.run(
      sandboxId,
      shCommand(wrapperScript(request, execId, stdinPath)),
      backstop,
    );
    output = parseWrapperOutput(response.result, request.maxOutputBytes);
  } catch (error) {
    failure = error;
  } finally {
    if (timer) clearTimeout(timer);
    request.signal?.removeEventListener('abort', onAbort);
    await killing;
  }
  if (ended === 'abort') throw request.signal?.reason ?? new Error('exec aborted');
  if (failure !== undefined || !output) {
    const mapped = await classify(failure);
    if (InvalidStateError.isInstance(mapped) || ended !== 'timeout') throw mapped;
  }
  if (ended === 'timeout') {
    throw new TimeoutError('exec', request.timeoutMs!, {
      sandboxId,
      ...(output ? { stdout: output.stdout, stderr: output.stderr } : {}),
    });
  }
  if (!output) throw new ProviderError('daytona', `exec in sandbox ${sandboxId} returned nothing`);
  if (output.stdout.byteLength > 0) request.onStdout?.(output.stdout);
  if (output.stderr.byteLength > 0) request.onStderr?.(output.stderr);
  return output;
}

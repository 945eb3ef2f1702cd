import type { ExecEvent } from '@cloudflare/sandbox';
import { shellQuote, sseEvents, WorkerError } from './http.js';
import {
  container,
  type Env,
  READY_MARKER,
  recoverRestarted,
  requireRunning,
  translate,
} from './sandboxes.js';

export type ExecBody = {
  /** Chosen by the caller, so that it can kill the command (`/exec/<execId>/kill`) on abort or timeout. */
  execId: string;
  command: string | string[];
  cwd: string;
  env?: Record<string, string>;
  timeoutMs?: number;
  /** Standard input, base64. */
  stdin?: string;
};

/**
 * The command the SDK runs. The SDK's exec events carry text, so the script base64-encodes stdout and
 * stderr chunk by chunk (perl's MIME::Base64, present in Cloudflare's image and ours), one chunk per
 * line, to keep every byte; a line starting with `!` is the wrapper's own message. Stderr goes through
 * a FIFO rather than a process substitution, whose descriptor bash would leak into background
 * processes (which then hold the exec open). `STATEBOX_EXEC_ID` in the environment of everything the
 * command starts lets a kill find its processes, daemons that called setsid included.
 */
const WRAPPER = [
  `[ -e ${READY_MARKER} ] || { printf '!not-ready\\n' >&2; exit 213; }`,
  `cd -- "$2" 2>/dev/null || { printf '!no-cwd\\n' >&2; exit 214; }`,
  'if [ -n "$3" ]; then exec 0<"$3"; rm -f -- "$3"; else exec 0</dev/null; fi',
  `encode() { perl -MMIME::Base64 -e 'binmode STDIN; $| = 1; my $b; while (sysread(STDIN, $b, 49152)) { print encode_base64($b, ""), "\\n" }'; }`,
  'fifo=/run/statebox/stderr-$STATEBOX_EXEC_ID',
  'mkfifo -- "$fifo" || exit 215',
  'encode < "$fifo" >&2 &',
  'encoder=$!',
  '/bin/sh -c "$1" 2>"$fifo" | encode',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell expansion, not a template
  'code=${PIPESTATUS[0]}',
  'wait $encoder',
  'rm -f -- "$fifo"',
  'exit $code',
].join('\n');

const EXEC_ID = /^[A-Za-z0-9-]{8,64}$/;

function wrap(command: string | string[], cwd: string, stdinPath: string): string {
  const line = typeof command === 'string' ? command : command.map(shellQuote).join(' ');
  return `bash -c ${shellQuote(WRAPPER)} statebox ${shellQuote(line)} ${shellQuote(cwd)} ${shellQuote(stdinPath)}`;
}

/** Kills every process carrying the exec's marker, repeating while new ones appear (a fork loop). */
export function killScript(execId: string): string {
  return [
    `m=${shellQuote(`STATEBOX_EXEC_ID=${execId}`)}`,
    'for pass in 1 2 3 4 5 6; do found=',
    '  for p in /proc/[0-9]*; do',
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell expansion, not a template
    '    if tr "\\0" "\\n" < $p/environ 2>/dev/null | grep -qxF -- "$m"; then kill -9 ${p#/proc/} 2>/dev/null; found=1; fi',
    '  done',
    '  [ -z "$found" ] && break',
    'done; true',
  ].join('\n');
}

export async function kill(env: Env, id: string, execId: string): Promise<void> {
  if (!EXEC_ID.test(execId))
    throw new WorkerError('bad_request', 'execId must be 8 to 64 letters, digits or dashes.');
  await requireRunning(env, id, 'kill an exec in');
  await container(env, id).exec(killScript(execId));
}

export async function exec(env: Env, id: string, body: ExecBody, request: Request): Promise<Response> {
  if (!EXEC_ID.test(body.execId ?? ''))
    throw new WorkerError('bad_request', 'execId must be 8 to 64 letters, digits or dashes.');
  if (typeof body.cwd !== 'string' || !body.cwd.startsWith('/'))
    throw new WorkerError('bad_request', 'cwd must be an absolute path.');
  const record = await requireRunning(env, id, 'exec in');
  const sandbox = container(env, id);
  const stdinPath = body.stdin ? `/run/statebox/stdin-${body.execId}` : '';
  const environment = { ...record.env, ...(body.env ?? {}), STATEBOX_EXEC_ID: body.execId };
  const command = wrap(body.command, body.cwd, stdinPath);

  const start = async () => {
    if (body.stdin) await sandbox.writeFile(stdinPath, body.stdin, { encoding: 'base64' });
    return (await sandbox.execStream(command, {
      env: environment,
      // A backstop for a caller that vanished: the container kills the command's process group.
      ...(body.timeoutMs ? { timeout: body.timeoutMs + 30_000 } : {}),
    })) as ReadableStream<Uint8Array>;
  };
  let stream: ReadableStream<Uint8Array>;
  try {
    stream = await start();
  } catch (error) {
    throw await translate(env, error, id, 'exec');
  }

  const encoder = new TextEncoder();
  let finished = false;
  const output = new ReadableStream<Uint8Array>({
    async start(controller) {
      const send = (event: unknown) =>
        controller.enqueue(encoder.encode(`data: ${JSON.stringify(event)}\n\n`));
      try {
        for (let attempt = 0; ; attempt++) {
          const outcome = await relay(stream, send);
          if (outcome !== 'not-ready' || attempt > 0) {
            if (outcome === 'no-cwd') {
              send({
                type: 'error',
                code: 'invalid_path',
                message: `The working directory ${body.cwd} does not exist in sandbox ${id}.`,
                path: body.cwd,
              });
            } else if (typeof outcome === 'number') {
              send({ type: 'exit', exitCode: outcome });
            } else {
              const error = await translate(
                env,
                new Error('the exec stream ended without an exit code'),
                id,
                'exec',
              );
              send({ type: 'error', code: error.code, message: error.message, ...error.details });
            }
            break;
          }
          // Cloudflare restarted the container since the last call: restore /workspace, then run again.
          await recoverRestarted(env, id, 'exec');
          stream = await start();
        }
      } catch (error) {
        const translated = await translate(env, error, id, 'exec');
        send({ type: 'error', code: translated.code, message: translated.message, ...translated.details });
      }
      finished = true;
      controller.close();
    },
    async cancel() {
      // The caller went away (abort, timeout, crash): end the command and everything it started.
      if (!finished) await kill(env, id, body.execId).catch(() => undefined);
    },
  });
  request.signal?.addEventListener?.('abort', () => {
    if (!finished) kill(env, id, body.execId).catch(() => undefined);
  });
  return new Response(output, {
    headers: { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' },
  });
}

/** Forwards one SDK exec stream as statebox events. Returns the exit code, or why there is none. */
async function relay(
  stream: ReadableStream<Uint8Array>,
  send: (event: unknown) => void,
): Promise<number | 'not-ready' | 'no-cwd' | 'broken'> {
  const pending = { stdout: '', stderr: '' };
  let marker: 'not-ready' | 'no-cwd' | undefined;
  const flush = (type: 'stdout' | 'stderr', text: string, final: boolean) => {
    pending[type] += text;
    const lines = pending[type].split('\n');
    pending[type] = final ? '' : lines.pop()!;
    for (const line of lines) {
      if (!line) continue;
      if (line.startsWith('!')) {
        marker = line === '!not-ready' ? 'not-ready' : line === '!no-cwd' ? 'no-cwd' : marker;
        continue;
      }
      send({ type, data: line });
    }
  };
  for await (const event of sseEvents<ExecEvent>(stream)) {
    if (event.type === 'stdout' || event.type === 'stderr') flush(event.type, event.data ?? '', false);
    else if (event.type === 'complete') {
      flush('stdout', '', true);
      flush('stderr', '', true);
      if (marker) return marker;
      return event.exitCode ?? event.result?.exitCode ?? 1;
    } else if (event.type === 'error') {
      return 'broken';
    }
  }
  return 'broken';
}

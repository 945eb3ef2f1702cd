import type { FileStreamEvent } from '@cloudflare/sandbox';
import { bytesToBase64, shellQuote, sseEvents, WorkerError } from './http.js';
import {
  container,
  type Env,
  READY_MARKER,
  recoverRestarted,
  requireRunning,
  translate,
} from './sandboxes.js';

/** Bytes per `/api/write` call: the SDK sends a whole file as one base64 JSON body. */
const PART_BYTES = 6 * 1024 * 1024;

const READ_PROBE = [
  `[ -e ${READY_MARKER} ] || { printf 'not-ready'; exit 0; }`,
  't=$(readlink -f -- "$1" 2>/dev/null)',
  '[ -n "$t" ] && [ -e "$t" ] || { printf missing; exit 0; }',
  'printf "%s|%s|%s" "$(stat -c %F -- "$t")" "$(stat -c %s -- "$t")" "$t"',
].join('\n');

const WRITE_PROBE = [
  `[ -e ${READY_MARKER} ] || { printf 'not-ready'; exit 0; }`,
  't=$(readlink -m -- "$1")',
  'm=',
  'if [ -e "$t" ] || [ -L "$t" ]; then',
  '  [ -f "$t" ] || { printf "invalid|%s" "$(stat -c %F -- "$t" 2>/dev/null)"; exit 0; }',
  '  m=$(stat -c %a -- "$t")',
  'fi',
  'mkdir -p -- "$(dirname -- "$t")" 2>/dev/null || { printf "invalid|a parent is not a directory"; exit 0; }',
  'printf "ok|%s|%s" "$m" "$t"',
].join('\n');

async function probe(env: Env, id: string, operation: string, script: string, path: string): Promise<string> {
  for (let attempt = 0; ; attempt++) {
    await requireRunning(env, id, operation);
    const result = await container(env, id).exec(
      `bash -c ${shellQuote(script)} statebox ${shellQuote(path)}`,
    );
    if (result.stdout !== 'not-ready' || attempt > 0) return result.stdout;
    await recoverRestarted(env, id, operation);
  }
}

/** GET /v1/sandboxes/:id/file?path=&maxBytes=: the file's bytes, streamed from the SDK's readFileStream. */
export async function readFile(env: Env, id: string, path: string, maxBytes: number): Promise<Response> {
  let target: string;
  let size: number;
  try {
    const answer = await probe(env, id, 'read a file in', READ_PROBE, path);
    if (answer === 'missing')
      throw new WorkerError('file_not_found', `No such file in sandbox ${id}: ${path}`, { path });
    const [type, sizeText, ...rest] = answer.split('|');
    target = rest.join('|');
    size = Number(sizeText);
    if (type !== 'regular file' && type !== 'regular empty file') {
      throw new WorkerError('invalid_path', `${path} in sandbox ${id} is a ${type}, not a regular file.`, {
        path,
      });
    }
    if (size > maxBytes) {
      throw new WorkerError('file_too_large', `${path} is ${size} bytes, over maxBytes ${maxBytes}.`, {
        path,
        size,
        maxBytes,
      });
    }
  } catch (error) {
    throw await translate(env, error, id, 'readFile');
  }
  if (size === 0) return new Response(new Uint8Array(), { headers: { 'x-statebox-size': '0' } });
  let events: ReadableStream<Uint8Array>;
  try {
    events = (await container(env, id).readFileStream(target)) as ReadableStream<Uint8Array>;
  } catch (error) {
    throw await translate(env, error, id, 'readFile');
  }
  const body = new ReadableStream<Uint8Array>({
    async start(controller) {
      try {
        for await (const event of sseEvents<FileStreamEvent>(events)) {
          if (event.type === 'chunk') controller.enqueue(base64Bytes(event.data));
          else if (event.type === 'error') throw new Error(event.error);
        }
        controller.close();
      } catch (error) {
        controller.error(error);
      }
    },
  });
  return new Response(body, {
    headers: { 'content-type': 'application/octet-stream', 'x-statebox-size': `${size}` },
  });
}

function base64Bytes(data: string): Uint8Array {
  const binary = atob(data);
  const bytes = new Uint8Array(binary.length);
  for (let index = 0; index < binary.length; index++) bytes[index] = binary.charCodeAt(index);
  return bytes;
}

/**
 * PUT /v1/sandboxes/:id/file?path=&mode=&stage=<uuid>: stages the bytes in a temporary file beside the
 * target (in parts, as the body arrives), with its final mode; `commitWrite` renames it over the
 * target. Two steps, so that a caller who gave up (abort, timeout) before the commit leaves the old
 * content: a Worker does not learn reliably that its caller went away.
 */
export async function writeFile(
  env: Env,
  id: string,
  path: string,
  mode: number | undefined,
  stage: string,
  request: Request,
): Promise<{ staged: string; target: string }> {
  if (!STAGE_ID.test(stage)) throw new WorkerError('bad_request', 'stage must be a UUID.');
  const sandbox = container(env, id);
  let temporary: string | undefined;
  try {
    const answer = await probe(env, id, 'write a file in', WRITE_PROBE, path);
    const [status, detail, ...rest] = answer.split('|');
    if (status !== 'ok') {
      throw new WorkerError(
        'invalid_path',
        `Cannot write ${path} in sandbox ${id}: ${detail || 'not a regular file'}.`,
        { path },
      );
    }
    const target = rest.join('|');
    const fileMode = mode === undefined ? detail || '644' : mode.toString(8);
    temporary = stagedPath(target, stage);
    const parts = await writeParts(sandbox, temporary, request.body);
    const join =
      parts[0] !== temporary
        ? `cat ${parts.map(shellQuote).join(' ')} > ${shellQuote(temporary)} && rm -f ${parts.map(shellQuote).join(' ')} && `
        : '';
    const staged = await sandbox.exec(`${join}chmod ${fileMode} ${shellQuote(temporary)}`);
    if (staged.exitCode !== 0) throw new Error(`staging the write failed: ${staged.stderr}`);
    return { staged: temporary, target };
  } catch (error) {
    if (temporary) await discard(sandbox, temporary);
    throw await translate(env, error, id, 'writeFile');
  }
}

const STAGE_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function stagedPath(target: string, stage: string): string {
  return `${target.slice(0, target.lastIndexOf('/'))}/.statebox-write-${stage}`;
}

function discard(sandbox: ReturnType<typeof container>, temporary: string): Promise<unknown> {
  return sandbox.exec(`rm -f ${shellQuote(temporary)} ${shellQuote(temporary)}.part*`).catch(() => undefined);
}

/** POST /v1/sandboxes/:id/file/commit {target, stage}: the atomic rename of a staged write. */
export async function commitWrite(
  env: Env,
  id: string,
  body: { target?: string; stage?: string },
): Promise<void> {
  if (typeof body.target !== 'string' || !body.target.startsWith('/') || !STAGE_ID.test(body.stage ?? '')) {
    throw new WorkerError('bad_request', 'commit needs the target and stage a staged write returned.');
  }
  await requireRunning(env, id, 'write a file in');
  const temporary = stagedPath(body.target, body.stage!);
  try {
    const result = await container(env, id).exec(
      `mv -f -- ${shellQuote(temporary)} ${shellQuote(body.target)}`,
    );
    if (result.exitCode !== 0) throw new Error(`committing the write failed: ${result.stderr}`);
  } catch (error) {
    throw await translate(env, error, id, 'writeFile');
  }
}

/** POST /v1/sandboxes/:id/file/discard {target, stage}: removes a staged write its caller gave up on. */
export async function discardWrite(
  env: Env,
  id: string,
  body: { path?: string; stage?: string },
): Promise<void> {
  if (typeof body.path !== 'string' || !STAGE_ID.test(body.stage ?? '')) return;
  await requireRunning(env, id, 'write a file in');
  const sandbox = container(env, id);
  const resolved = await sandbox.exec(`readlink -m -- ${shellQuote(body.path)}`);
  await discard(sandbox, stagedPath(resolved.stdout.trim(), body.stage!));
}

async function writeParts(
  sandbox: ReturnType<typeof container>,
  temporary: string,
  body: ReadableStream<Uint8Array> | null,
): Promise<string[]> {
  const parts: string[] = [];
  let buffered: Uint8Array[] = [];
  let bufferedBytes = 0;
  const flush = async (final: boolean) => {
    const bytes = new Uint8Array(bufferedBytes);
    let offset = 0;
    for (const chunk of buffered) {
      bytes.set(chunk, offset);
      offset += chunk.byteLength;
    }
    // A file that fits in one part is written straight to the temporary name.
    const part = final && parts.length === 0 ? temporary : `${temporary}.part${parts.length}`;
    await sandbox.writeFile(part, bytesToBase64(bytes), { encoding: 'base64' });
    parts.push(part);
    buffered = [];
    bufferedBytes = 0;
  };
  if (body) {
    const reader = body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      let rest = value;
      while (rest.byteLength > 0) {
        const take = Math.min(rest.byteLength, PART_BYTES - bufferedBytes);
        buffered.push(rest.subarray(0, take));
        bufferedBytes += take;
        rest = rest.subarray(take);
        if (bufferedBytes === PART_BYTES) await flush(false);
      }
    }
  }
  if (bufferedBytes > 0 || parts.length === 0) await flush(true);
  return parts;
}

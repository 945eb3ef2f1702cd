/** The statebox Worker's error answers: `{ error: { code, message, ...details } }` with a fitting status. */
export type ErrorCode =
  | 'unauthorized'
  | 'not_configured'
  | 'bad_request'
  | 'not_found'
  | 'invalid_state'
  | 'file_not_found'
  | 'invalid_path'
  | 'file_too_large'
  | 'backup_too_large'
  | 'transient'
  | 'internal';

const statusOf: Record<ErrorCode, number> = {
  unauthorized: 401,
  not_configured: 500,
  bad_request: 400,
  not_found: 404,
  invalid_state: 409,
  file_not_found: 404,
  invalid_path: 400,
  file_too_large: 413,
  backup_too_large: 413,
  transient: 503,
  internal: 500,
};

export class WorkerError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown>;
  constructor(code: ErrorCode, message: string, details: Record<string, unknown> = {}) {
    super(message);
    this.code = code;
    this.details = details;
  }
  get status(): number {
    return statusOf[this.code];
  }
}

export function json(value: unknown, status = 200): Response {
  return new Response(JSON.stringify(value), { status, headers: { 'content-type': 'application/json' } });
}

export function errorResponse(error: WorkerError): Response {
  return json({ error: { code: error.code, message: error.message, ...error.details } }, error.status);
}

export async function readJson<T>(request: Request): Promise<T> {
  try {
    const text = await request.text();
    return (text ? JSON.parse(text) : {}) as T;
  } catch {
    throw new WorkerError('bad_request', 'The request body is not JSON.');
  }
}

export { shellQuote } from '@statebox/adapter-kit/shell';

export function hexToBytes(hex: string): Uint8Array {
  const bytes = new Uint8Array(hex.length >> 1);
  for (let index = 0; index < bytes.length; index++) {
    bytes[index] = Number.parseInt(hex.slice(index * 2, index * 2 + 2), 16);
  }
  return bytes;
}

export function bytesToBase64(bytes: Uint8Array): string {
  let binary = '';
  for (let offset = 0; offset < bytes.length; offset += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(offset, offset + 0x8000));
  }
  return btoa(binary);
}

export function base64ToBytes(base64: string): Uint8Array {
  const binary = atob(base64);
  const bytes = new Uint8Array(binary.length);
  for (let index = 0; index < binary.length; index++) bytes[index] = binary.charCodeAt(index);
  return bytes;
}

/** Splits a `text/event-stream` body into the JSON of its `data:` lines. */
export async function* sseEvents<T>(stream: ReadableStream<Uint8Array>): AsyncGenerator<T> {
  const decoder = new TextDecoder();
  let buffer = '';
  const reader = stream.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      // Search only the new text (and the one character before it): an event of megabytes arrives in
      // many chunks, and scanning the whole buffer for every chunk would be quadratic.
      const searchFrom = Math.max(0, buffer.length - 1);
      buffer += decoder.decode(value, { stream: true });
      let end = buffer.indexOf('\n\n', searchFrom);
      while (end >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = block
          .split('\n')
          .filter((line) => line.startsWith('data:'))
          .map((line) => line.slice(5).trimStart())
          .join('\n');
        if (data) yield JSON.parse(data) as T;
        end = buffer.indexOf('\n\n');
      }
    }
  } finally {
    reader.releaseLock();
  }
}

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

export { sseEvents } from '../sse.js';

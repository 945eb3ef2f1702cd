import type { Context } from 'hono';
import { HttpError } from './errors.js';

/** 32 MiB, the request size limit of the vendors emulated so far. */
export const DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024;

function describeBytes(bytes: number): string {
  return bytes % (1024 * 1024) === 0 ? `${bytes / (1024 * 1024)} MiB` : `${bytes} bytes`;
}

/**
 * The request body, read up to `maxBytes`: past it the read stops and a 413 (`request_too_large`) is
 * thrown, so a runaway client cannot make the emulator buffer without end.
 */
export async function readBody(c: Context, maxBytes = DEFAULT_MAX_BODY_BYTES): Promise<Uint8Array> {
  const body = c.req.raw.body;
  if (!body) return new Uint8Array(0);
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.byteLength;
    if (size > maxBytes) {
      throw new HttpError(413, `request body exceeds ${describeBytes(maxBytes)}`, {
        code: 'request_too_large',
      });
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/**
 * The request body as a JSON object; an empty body is `{}`. Anything else (malformed JSON, an array, a
 * string) is a 400 with code `invalid_json`.
 */
export async function readJsonObject(
  c: Context,
  maxBytes = DEFAULT_MAX_BODY_BYTES,
): Promise<Record<string, unknown>> {
  const bytes = await readBody(c, maxBytes);
  if (bytes.byteLength === 0) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (error) {
    throw new HttpError(400, `request body is not valid JSON: ${(error as Error).message}`, {
      code: 'invalid_json',
    });
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new HttpError(400, 'request body must be a JSON object', { code: 'invalid_json' });
  }
  return parsed as Record<string, unknown>;
}

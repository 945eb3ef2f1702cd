import type { IncomingMessage, ServerResponse } from 'node:http';
import { ApiError, badRequest } from './errors.js';

const MAX_BODY_BYTES = 32 * 1024 * 1024;

export async function readJson(request: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new ApiError(413, 'request_too_large', 'request body exceeds 32 MiB');
    chunks.push(chunk as Buffer);
  }
  if (size === 0) return {};
  try {
    const parsed = JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
      throw badRequest('request body must be a JSON object');
    }
    return parsed as Record<string, unknown>;
  } catch (error) {
    if (error instanceof ApiError) throw error;
    throw badRequest(`request body is not valid JSON: ${(error as Error).message}`);
  }
}

export function sendJson(
  response: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const payload = Buffer.from(JSON.stringify(body), 'utf8');
  response.writeHead(status, {
    'content-type': 'application/json',
    'content-length': String(payload.length),
    ...headers,
  });
  response.end(payload);
}

export function sendError(response: ServerResponse, error: ApiError, requestId: string): void {
  const headers: Record<string, string> = { 'request-id': requestId };
  if (error.extra.retryable === false) headers['x-should-retry'] = 'false';
  sendJson(response, error.status, { ...error.body(), request_id: requestId }, headers);
}

/**
 * Query values the SDK may send as `key`, `key[]` or `key[0]`, `key[1]` (its qs uses the indices format).
 */
export function queryList(query: URLSearchParams, key: string): string[] {
  const values: string[] = [];
  for (const [name, value] of query) {
    if (name === key || name === `${key}[]` || new RegExp(`^${key}\\[\\d+\\]$`).test(name)) {
      values.push(...value.split(',').filter(Boolean));
    }
  }
  return values;
}

export function queryInt(query: URLSearchParams, key: string, min: number, max: number): number | null {
  const raw = query.get(key);
  if (raw === null || raw === '') return null;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw badRequest(`${key} must be an integer between ${min} and ${max}`);
  }
  return value;
}

/** Opaque offset cursors for `page` / `next_page`. */
export function paginate<T>(
  items: T[],
  query: URLSearchParams,
  defaultLimit: number,
  maxLimit: number,
): { data: T[]; next_page: string | null; prev_page: string | null } {
  const limit = queryInt(query, 'limit', 1, maxLimit) ?? defaultLimit;
  const page = query.get('page');
  let offset = 0;
  if (page) {
    const decoded = Number(
      Buffer.from(page, 'base64url')
        .toString('utf8')
        .replace(/^page:/, ''),
    );
    if (!Number.isInteger(decoded) || decoded < 0) throw badRequest('page is not a valid cursor');
    offset = decoded;
  }
  const cursor = (at: number) => Buffer.from(`page:${at}`, 'utf8').toString('base64url');
  const data = items.slice(offset, offset + limit);
  return {
    data,
    next_page: offset + limit < items.length ? cursor(offset + limit) : null,
    prev_page: offset > 0 ? cursor(Math.max(0, offset - limit)) : null,
  };
}

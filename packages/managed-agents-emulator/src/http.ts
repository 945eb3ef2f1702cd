import { type EmulatorContext, type RouteHandler, readJsonObject } from '@statebox/emulator-kit';
import type { Principal } from './auth.js';
import { badRequest } from './errors.js';
import type { SessionRecord } from './sessions.js';

/** Fields every request record carries besides the kit's (method, path, route, status...). */
export interface RequestFields {
  /** The credential kind that authenticated the request; `none` before (or without) authentication. */
  principal: Principal['kind'] | 'none';
  /** The `anthropic-beta` header, or `null` when absent (the emulator is lenient and only records it). */
  beta: string | null;
  workerId: string | null;
}

/** What routes put on the request context. */
export interface RouteVariables {
  principal: Principal;
  /** A send's session and body, resolved before the fault stage (see `routes/events.ts`). */
  send?: { session: SessionRecord; body: Record<string, unknown> };
}

export type Ctx = EmulatorContext<RouteVariables, RequestFields>;
export type Handler = RouteHandler<RouteVariables, RequestFields>;

/** A JSON object body, up to 32 MiB; an empty body is `{}`. */
export function body(c: Ctx): Promise<Record<string, unknown>> {
  return readJsonObject(c);
}

export function query(c: Ctx): URLSearchParams {
  return new URL(c.req.url).searchParams;
}

/** 200 with `value` as JSON, or 204 for `null` (as the work poll answers when nothing is queued). */
export function reply(c: Ctx, value: unknown): Response {
  const headers = { 'request-id': c.get('requestId') };
  if (value === null) return c.body(null, 204, headers);
  return c.json(value as object, 200, headers);
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

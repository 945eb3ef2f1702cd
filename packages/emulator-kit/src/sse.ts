import type { ServerResponse } from 'node:http';
import type { HttpBindings } from '@hono/node-server';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import type { Context } from 'hono';

export interface EventStreamOptions {
  /** Send a `: heartbeat` comment this often, as vendors do to keep proxies from closing idle streams. */
  heartbeatMs?: number | null;
  /** A comment sent right after the headers, so the client sees the stream open at once. */
  openingComment?: string | null;
  /** Extra response headers. */
  headers?: Record<string, string>;
}

/**
 * One open `text/event-stream` response. Frames are written to the socket as they are sent, in order,
 * so a test sees an event as soon as the emulator emits it. The stream is written on the Node response
 * directly rather than through a web `ReadableStream`: `drop()` must be able to destroy the socket
 * mid-stream, which is the failure a client's reconnect logic has to survive.
 */
export class EventStream {
  readonly #response: ServerResponse;
  readonly #heartbeat: NodeJS.Timeout | undefined;
  readonly #closeListeners = new Set<() => void>();
  #open = true;

  constructor(response: ServerResponse, options: EventStreamOptions = {}) {
    this.#response = response;
    response.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      ...options.headers,
    });
    const opening = options.openingComment === undefined ? 'stream opened' : options.openingComment;
    if (opening !== null) this.comment(opening);
    else response.flushHeaders();
    if (options.heartbeatMs) {
      this.#heartbeat = setInterval(() => this.comment('heartbeat'), options.heartbeatMs);
      this.#heartbeat.unref();
    }
    response.on('close', () => this.#closed());
  }

  /** False once the stream ended, was dropped, or the client went away. */
  get open(): boolean {
    return this.#open;
  }

  /** Send one event: `event: <event>` (when given), then `data:` lines, then a blank line. */
  send(event: string | undefined, data: string, id?: string): void {
    if (!this.#open) return;
    let frame = event === undefined ? '' : `event: ${event}\n`;
    for (const line of data.split('\n')) frame += `data: ${line}\n`;
    if (id !== undefined) frame += `id: ${id}\n`;
    this.#response.write(`${frame}\n`);
  }

  /** Send `value` serialised as JSON on one `data:` line. */
  sendJson(event: string | undefined, value: unknown, id?: string): void {
    this.send(event, JSON.stringify(value), id);
  }

  /** Send a `: <text>` comment line, which clients ignore. */
  comment(text: string): void {
    if (this.#open) this.#response.write(`: ${text}\n\n`);
  }

  /** End the stream gracefully (the client sees the end of the body). */
  end(): void {
    if (!this.#open) return;
    this.#response.end();
    this.#closed();
  }

  /** Destroy the socket, as a dropped connection would: the client sees a network error, not an end. */
  drop(): void {
    if (!this.#open) return;
    this.#response.destroy();
    this.#closed();
  }

  /** Called once, when the stream ends, is dropped, or the client disconnects. */
  onClose(listener: () => void): void {
    if (this.#open) this.#closeListeners.add(listener);
    else listener();
  }

  #closed(): void {
    if (!this.#open) return;
    this.#open = false;
    if (this.#heartbeat) clearInterval(this.#heartbeat);
    for (const listener of this.#closeListeners) listener();
    this.#closeListeners.clear();
  }
}

/**
 * Answer the request with an event stream. Return `response` from the handler; keep `stream` to send on.
 *
 * ```ts
 * server.get('/v1/runs/:id/events', (c) => {
 *   const { stream, response } = openEventStream(c, { heartbeatMs: 15_000 });
 *   run.subscribers.add(stream);
 *   stream.onClose(() => run.subscribers.delete(stream));
 *   return response;
 * });
 * ```
 */
export function openEventStream<E extends { Bindings: HttpBindings }>(
  c: Context<E>,
  options: EventStreamOptions = {},
): { stream: EventStream; response: Response } {
  return { stream: new EventStream(c.env.outgoing, options), response: RESPONSE_ALREADY_SENT };
}

import { TimeoutError } from '@statebox/core';
import { type ErrorContext, fromWorker, unreachable, type WorkerErrorBody } from './errors.js';

export type RequestOptions = {
  method?: string;
  body?: unknown;
  /** Raw bytes instead of JSON. */
  bytes?: Uint8Array;
  timeoutMs: number;
  signal?: AbortSignal | undefined;
  context: ErrorContext;
};

/**
 * The one module that talks to the statebox Worker: HTTP with keep-alive (Node's fetch pools
 * connections), a bearer token, a timeout per request, and the Worker's errors mapped to statebox's.
 */
export class WorkerClient {
  constructor(
    readonly url: string,
    private readonly token: string,
  ) {}

  /** Sends a request and returns the response when it is 2xx; throws the mapped error otherwise. */
  async send(path: string, options: RequestOptions): Promise<Response> {
    const timeout = AbortSignal.timeout(options.timeoutMs);
    const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
    let response: Response;
    try {
      response = await fetch(`${this.url}${path}`, {
        method: options.method ?? 'GET',
        headers: {
          authorization: `Bearer ${this.token}`,
          ...(options.bytes ? { 'content-type': 'application/octet-stream' } : {}),
          ...(options.body !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        body: options.bytes ?? (options.body !== undefined ? JSON.stringify(options.body) : undefined),
        signal,
      });
    } catch (error) {
      if (options.signal?.aborted) throw options.signal.reason;
      if (timeout.aborted)
        throw new TimeoutError(options.context.operation, options.timeoutMs, options.context);
      throw unreachable(this.url, error, options.context);
    }
    if (response.ok) return response;
    const text = await response.text().catch(() => '');
    let body: WorkerErrorBody | undefined;
    try {
      body = (JSON.parse(text) as { error?: WorkerErrorBody }).error;
    } catch {
      body = undefined;
    }
    throw fromWorker(
      response.status,
      body ?? (text ? { code: '', message: text.slice(0, 500) } : undefined),
      options.context,
    );
  }

  async json<T>(path: string, options: RequestOptions): Promise<T> {
    const response = await this.send(path, options);
    try {
      return (await response.json()) as T;
    } catch (error) {
      if (options.signal?.aborted) throw options.signal.reason;
      throw unreachable(this.url, error, options.context);
    }
  }
}

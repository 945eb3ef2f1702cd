import http from 'node:http';
import type { Socket } from 'node:net';

/**
 * A small Docker Engine API client: plain `node:http` over the daemon's unix socket (or tcp) with a
 * keep-alive agent, JSON in and out, and hijacked connections for exec.
 *
 * Why not dockerode or the CLI: on this machine (2 vCPUs, Docker 20.10, runc) an exec of `sh -c 'echo hi'`
 * took 69 ms through `docker exec`, 46 ms through dockerode, and 45 ms median (30–60 ms) through this
 * client (3 round trips: create, start, inspect). Nearly all of what remains is runc's own exec; the HTTP
 * part is about 1 ms, and an inspect or a label-filtered list takes 0.3–0.5 ms on a warm socket.
 */
export type DockerEndpoint = { socketPath: string } | { host: string; port: number };

export type DockerResponse<T = unknown> = { status: number; body: T };

/** What the daemon answered when it refused a request: the HTTP status and its `message`. */
export class DockerApiError extends Error {
  readonly status: number;
  readonly path: string;
  constructor(status: number, message: string, path: string) {
    super(message);
    this.name = 'DockerApiError';
    this.status = status;
    this.path = path;
  }
}

/** The daemon could not be reached at all (no socket, refused, reset). */
export class DockerConnectionError extends Error {
  readonly code: string | undefined;
  constructor(message: string, code: string | undefined, cause: unknown) {
    super(message, { cause });
    this.name = 'DockerConnectionError';
    this.code = code;
  }
}

export function parseDockerHost(value: string): DockerEndpoint {
  if (value.startsWith('unix://')) return { socketPath: value.slice('unix://'.length) };
  if (value.startsWith('/')) return { socketPath: value };
  const match = /^(?:tcp|http):\/\/([^:/]+)(?::(\d+))?\/?$/.exec(value);
  if (match) return { host: match[1]!, port: Number(match[2] ?? 2375) };
  throw new Error(
    `unsupported DOCKER_HOST ${JSON.stringify(value)}: use unix:///path/to/docker.sock or tcp://host:port`,
  );
}

export type RequestOptions = {
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  /** Raw bytes to send instead of JSON (a tar archive). */
  raw?: Uint8Array;
  headers?: Record<string, string>;
  /** Return the body as bytes instead of parsing JSON. */
  binary?: boolean;
  /** Statuses that are answers, not errors (e.g. 304 for "already started"). */
  accept?: readonly number[];
  signal?: AbortSignal;
  /** Give up, with `ResponseTooLargeError`, once the body passes this many bytes. */
  maxBytes?: number;
};

/** A response body went over `RequestOptions.maxBytes`; the request was dropped there. */
export class ResponseTooLargeError extends Error {
  readonly received: number;
  constructor(received: number, path: string) {
    super(`the daemon's answer to ${path} passed ${received} bytes`);
    this.name = 'ResponseTooLargeError';
    this.received = received;
  }
}

export class DockerClient {
  readonly endpoint: DockerEndpoint;
  readonly #agent: http.Agent;

  constructor(endpoint: DockerEndpoint) {
    this.endpoint = endpoint;
    // keepAlive matters: a fresh unix-socket connection per call costs little, but tcp ones do, and the
    // daemon answers faster on a warm connection. Unref'd sockets do not keep the process alive.
    this.#agent = new http.Agent({ keepAlive: true, maxSockets: 32 });
  }

  close(): void {
    this.#agent.destroy();
  }

  async request<T = unknown>(
    method: string,
    path: string,
    options: RequestOptions = {},
  ): Promise<DockerResponse<T>> {
    const fullPath = withQuery(path, options.query);
    const payload =
      options.raw ?? (options.body === undefined ? undefined : Buffer.from(JSON.stringify(options.body)));
    const headers: Record<string, string> = { ...options.headers };
    if (payload) {
      headers['content-type'] ??= options.raw ? 'application/x-tar' : 'application/json';
      headers['content-length'] = String(payload.byteLength);
    }
    return await new Promise<DockerResponse<T>>((resolve, reject) => {
      const request = http.request(
        { ...this.#target(), method, path: fullPath, agent: this.#agent, headers, signal: options.signal },
        (response) => {
          const chunks: Buffer[] = [];
          let received = 0;
          response.on('data', (chunk: Buffer) => {
            received += chunk.byteLength;
            if (options.maxBytes !== undefined && received > options.maxBytes) {
              reject(new ResponseTooLargeError(received, path));
              request.destroy();
              return;
            }
            chunks.push(chunk);
          });
          response.on('error', (error) =>
            reject(options.signal?.aborted ? error : this.#connectionError(error)),
          );
          response.on('end', () => {
            const buffer = Buffer.concat(chunks);
            const status = response.statusCode ?? 0;
            if (status >= 400 && !options.accept?.includes(status)) {
              reject(new DockerApiError(status, errorMessage(buffer), fullPath));
              return;
            }
            if (options.binary) {
              resolve({
                status,
                body: new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength) as T,
              });
              return;
            }
            const isJson = (response.headers['content-type'] ?? '').includes('json');
            resolve({
              status,
              body: (isJson && buffer.length > 0 ? JSON.parse(buffer.toString('utf8')) : buffer) as T,
            });
          });
        },
      );
      request.on('error', (error) => reject(options.signal?.aborted ? error : this.#connectionError(error)));
      request.end(payload);
    });
  }

  /**
   * Starts a request that the daemon hijacks (exec start, attach) and hands back the raw socket, after
   * the `101 UPGRADED` answer. Reading it yields the multiplexed stream; `end()` closes the process's stdin.
   */
  async hijack(path: string, body: unknown): Promise<Socket> {
    const payload = Buffer.from(JSON.stringify(body));
    return await new Promise<Socket>((resolve, reject) => {
      const request = http.request({
        ...this.#target(),
        method: 'POST',
        path,
        // A hijacked socket is never reused, so it must not come from (or go back to) the keep-alive pool.
        agent: false,
        headers: {
          'content-type': 'application/json',
          'content-length': String(payload.byteLength),
          connection: 'Upgrade',
          upgrade: 'tcp',
        },
      });
      request.on('upgrade', (_response, socket, head) => {
        if (head.length > 0) socket.unshift(head);
        resolve(socket);
      });
      request.on('response', (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () =>
          reject(new DockerApiError(response.statusCode ?? 0, errorMessage(Buffer.concat(chunks)), path)),
        );
      });
      request.on('error', (error) => reject(this.#connectionError(error)));
      request.end(payload);
    });
  }

  /** A HEAD request: the status and headers (the archive endpoint answers a stat in a header). */
  async head(
    path: string,
    query: RequestOptions['query'],
    signal?: AbortSignal,
  ): Promise<{ status: number; headers: http.IncomingHttpHeaders }> {
    return await new Promise((resolve, reject) => {
      const request = http.request(
        { ...this.#target(), method: 'HEAD', path: withQuery(path, query), agent: this.#agent, signal },
        (response) => {
          response.resume();
          response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers }));
        },
      );
      request.on('error', (error) => reject(signal?.aborted ? error : this.#connectionError(error)));
      request.end();
    });
  }

  /**
   * Exports a container's whole filesystem and imports it as a one-layer image, streaming from one
   * request into the other. Used to flatten commit chains before Docker's 125-layer limit.
   */
  async squash(containerId: string, changes: readonly string[]): Promise<string> {
    const query = changes.map((change) => `changes=${encodeURIComponent(change)}`).join('&');
    return await new Promise<string>((resolve, reject) => {
      const fail = (error: unknown) => reject(this.#connectionError(error));
      const importRequest = http.request(
        {
          ...this.#target(),
          method: 'POST',
          path: `/images/create?fromSrc=-&${query}`,
          agent: false,
          headers: { 'content-type': 'application/x-tar', 'transfer-encoding': 'chunked' },
        },
        (response) => {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            const id = /"status"\s*:\s*"(sha256:[0-9a-f]+)"/.exec(text)?.[1];
            if ((response.statusCode ?? 500) >= 400 || !id) {
              reject(
                new DockerApiError(response.statusCode ?? 500, errorMessage(Buffer.from(text)), 'import'),
              );
            } else resolve(id);
          });
        },
      );
      importRequest.on('error', fail);
      const exportRequest = http.request(
        { ...this.#target(), method: 'GET', path: `/containers/${containerId}/export`, agent: false },
        (response) => {
          if ((response.statusCode ?? 500) >= 400) {
            importRequest.destroy();
            reject(new DockerApiError(response.statusCode ?? 500, 'export failed', 'export'));
            return;
          }
          response.pipe(importRequest);
        },
      );
      exportRequest.on('error', fail);
      exportRequest.end();
    });
  }

  #target(): http.RequestOptions {
    return 'socketPath' in this.endpoint
      ? { socketPath: this.endpoint.socketPath }
      : { host: this.endpoint.host, port: this.endpoint.port };
  }

  #connectionError(error: unknown): Error {
    if (error instanceof DockerApiError) return error;
    const code = (error as { code?: string }).code;
    return new DockerConnectionError((error as Error).message, code, error);
  }
}

function withQuery(path: string, query: RequestOptions['query']): string {
  if (!query) return path;
  const parameters = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined) parameters.set(key, String(value));
  }
  const text = parameters.toString();
  return text ? `${path}?${text}` : path;
}

function errorMessage(buffer: Buffer): string {
  const text = buffer.toString('utf8').trim();
  try {
    const parsed = JSON.parse(text) as { message?: string };
    if (typeof parsed.message === 'string') return parsed.message;
  } catch {
    // Not JSON: use the text as is.
  }
  return text || 'empty response';
}

/**
 * Splits Docker's multiplexed exec stream (used when no TTY is attached): each frame is an 8-byte header
 * `[stream, 0, 0, 0, size as big-endian uint32]` followed by `size` bytes; stream 1 is stdout, 2 stderr.
 */
export class StreamDemuxer {
  #pending: Buffer = Buffer.alloc(0);
  readonly #onFrame: (stream: 1 | 2, chunk: Uint8Array) => void;

  constructor(onFrame: (stream: 1 | 2, chunk: Uint8Array) => void) {
    this.#onFrame = onFrame;
  }

  push(data: Buffer): void {
    this.#pending = this.#pending.length === 0 ? data : Buffer.concat([this.#pending, data]);
    while (this.#pending.length >= 8) {
      const size = this.#pending.readUInt32BE(4);
      if (this.#pending.length < 8 + size) return;
      const stream = this.#pending[0] === 2 ? 2 : 1;
      const frame = this.#pending.subarray(8, 8 + size);
      this.#pending = this.#pending.subarray(8 + size);
      if (size > 0) this.#onFrame(stream, new Uint8Array(frame));
    }
  }
}

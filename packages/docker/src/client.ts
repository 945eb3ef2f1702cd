import http, { type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import Modem from 'docker-modem';

/**
 * The Docker Engine API client: docker-modem (the HTTP layer under every dockerode call) over the
 * daemon's unix socket (or tcp) with a keep-alive agent, JSON in and out, and hijacked connections for
 * exec. Status handling stays here: every status is handed back by the modem, and a refusal becomes a
 * `DockerApiError` with the daemon's message, which errors.ts maps to statebox errors.
 *
 * Why docker-modem and not our own `node:http` client, which this was until issue 8: measured in one
 * run of `pnpm bench -- --provider docker-clients` (both clients under the same provider, same daemon and
 * sandboxes, interleaved; see the README's "How it works" for the figures), our client was not
 * measurably faster: the medians differed by under 10% on exec and fork, both ways within the noise
 * (bootstrap 95% intervals of the difference all straddled zero).
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

/** Every status is an answer to the modem: which ones are errors is decided here, as the provider expects. */
const ANY_STATUS = new Proxy({}, { get: () => true });

export class DockerClient {
  readonly endpoint: DockerEndpoint;
  readonly #agent: http.Agent;
  readonly #modem: Modem;

  constructor(endpoint: DockerEndpoint) {
    this.endpoint = endpoint;
    // keepAlive matters: a fresh unix-socket connection per call costs little, but tcp ones do, and the
    // daemon answers faster on a warm connection. Unref'd sockets do not keep the process alive.
    this.#agent = new http.Agent({ keepAlive: true, maxSockets: 32 });
    this.#modem = new Modem({
      ...('socketPath' in endpoint
        ? { socketPath: endpoint.socketPath }
        : { protocol: 'http', host: endpoint.host, port: endpoint.port }),
      agent: this.#agent,
    });
  }

  close(): void {
    this.#agent.destroy();
  }

  /** Sends one request; resolves with the response stream, whatever its status. */
  #dial<T = IncomingMessage>(options: Record<string, unknown>): Promise<T> {
    return new Promise((resolve, reject) => {
      this.#modem.dial({ statusCodes: ANY_STATUS, ...options } as Modem.DialOptions, (error, result) => {
        if (error)
          reject(
            options.abortSignal && (options.abortSignal as AbortSignal).aborted
              ? error
              : this.#connectionError(error),
          );
        else resolve(result as T);
      });
    });
  }

  /** Sends a request (JSON body, or `raw` bytes) with the query, and reads the whole answer. */
  async #send(
    method: string,
    path: string,
    options: RequestOptions,
  ): Promise<{ response: IncomingMessage; buffer: Buffer }> {
    const query = Object.fromEntries(
      Object.entries(options.query ?? {})
        .filter(([, value]) => value !== undefined)
        .map(([key, value]) => [key, String(value)]),
    );
    const hasQuery = Object.keys(query).length > 0;
    const body = options.body ?? {};
    const raw =
      options.raw && Buffer.from(options.raw.buffer, options.raw.byteOffset, options.raw.byteLength);
    const response = await this.#dial({
      // A path ending in `?` tells the modem to append `_query`; `_body` is then the JSON body.
      path: hasQuery ? `${path}?` : path,
      method,
      options: hasQuery ? { _query: query, _body: body } : body,
      ...(raw && { file: raw, headers: { 'Content-Type': 'application/x-tar', ...options.headers } }),
      ...(!raw && options.headers && { headers: options.headers }),
      ...(options.signal && { abortSignal: options.signal }),
      isStream: true,
    });
    const chunks: Buffer[] = [];
    let received = 0;
    try {
      for await (const chunk of response as AsyncIterable<Buffer>) {
        received += chunk.byteLength;
        if (options.maxBytes !== undefined && received > options.maxBytes) {
          response.destroy();
          throw new ResponseTooLargeError(received, path);
        }
        chunks.push(chunk);
      }
    } catch (error) {
      if (error instanceof ResponseTooLargeError || options.signal?.aborted) throw error;
      throw this.#connectionError(error);
    }
    return { response, buffer: Buffer.concat(chunks) };
  }

  async request<T = unknown>(
    method: string,
    path: string,
    options: RequestOptions = {},
  ): Promise<DockerResponse<T>> {
    const { response, buffer } = await this.#send(method, path, options);
    const status = response.statusCode ?? 0;
    if (status >= 400 && !options.accept?.includes(status)) {
      throw new DockerApiError(status, errorMessage(buffer), withQuery(path, options.query));
    }
    if (options.binary) {
      return { status, body: new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength) as T };
    }
    const isJson = (response.headers['content-type'] ?? '').includes('json');
    return {
      status,
      body: (isJson && buffer.length > 0 ? JSON.parse(buffer.toString('utf8')) : buffer) as T,
    };
  }

  /**
   * Starts a request that the daemon hijacks (exec start, attach) and hands back the raw socket, after
   * the `101 UPGRADED` answer. Reading it yields the multiplexed stream; `end()` closes the process's stdin.
   */
  async hijack(path: string, body: unknown): Promise<Socket> {
    const result = await this.#dial<Socket | IncomingMessage>({
      path,
      method: 'POST',
      options: body,
      hijack: true,
      isStream: true,
    });
    if (!('statusCode' in result) || result.statusCode === undefined) return result as Socket;
    // Answered instead of upgraded: a refusal (404 no such exec, 409 container not running).
    const chunks: Buffer[] = [];
    for await (const chunk of result as AsyncIterable<Buffer>) chunks.push(chunk);
    throw new DockerApiError(result.statusCode, errorMessage(Buffer.concat(chunks)), path);
  }

  /** A HEAD request: the status and headers (the archive endpoint answers a stat in a header). */
  async head(
    path: string,
    query: RequestOptions['query'],
    signal?: AbortSignal,
  ): Promise<{ status: number; headers: http.IncomingHttpHeaders }> {
    const { response } = await this.#send('HEAD', path, {
      ...(query && { query }),
      ...(signal && { signal }),
    });
    return { status: response.statusCode ?? 0, headers: response.headers };
  }

  /**
   * Exports a container's whole filesystem and imports it as a one-layer image, streaming from one
   * request into the other. Used to flatten commit chains before Docker's 125-layer limit.
   */
  async squash(containerId: string, changes: readonly string[]): Promise<string> {
    const exported = await this.#dial({
      path: `/containers/${containerId}/export`,
      method: 'GET',
      isStream: true,
    });
    if ((exported.statusCode ?? 500) >= 400) {
      exported.resume();
      throw new DockerApiError(exported.statusCode ?? 500, 'export failed', 'export');
    }
    const imported = await this.#dial({
      path: '/images/create?',
      method: 'POST',
      options: { _query: { fromSrc: '-', changes: [...changes] } },
      file: exported,
      isStream: true,
    });
    const chunks: Buffer[] = [];
    for await (const chunk of imported as AsyncIterable<Buffer>) chunks.push(chunk);
    const text = Buffer.concat(chunks).toString('utf8');
    const id = /"status"\s*:\s*"(sha256:[0-9a-f]+)"/.exec(text)?.[1];
    if ((imported.statusCode ?? 500) >= 400 || !id) {
      throw new DockerApiError(imported.statusCode ?? 500, errorMessage(Buffer.from(text)), 'import');
    }
    return id;
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

import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createAdaptorServer, type HttpBindings } from '@hono/node-server';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import { type Context, Hono, type MiddlewareHandler, type Next } from 'hono';
import { defaultErrorResponse, type ErrorResponder, HttpError } from './errors.js';
import { FaultInjector } from './faults.js';
import { assertLoopbackHost } from './loopback.js';
import { RequestLog, type RequestRecord } from './request-log.js';

/** What the kit puts on every request's context (`c.get('requestId')`, `c.get('record')`). */
export type KitVariables<Extra extends object> = {
  requestId: string;
  record: RequestRecord & Extra;
};

/** The hono environment of an emulator: Node bindings, the kit's variables and the vendor's own `V`. */
export type EmulatorEnv<V extends object = object, Extra extends object = object> = {
  Bindings: HttpBindings;
  Variables: KitVariables<Extra> & V;
};

export type EmulatorContext<V extends object = object, Extra extends object = object> = Context<
  EmulatorEnv<V, Extra>
>;

/**
 * A route's middleware or final handler: hono's handler shape on the emulator's context. Middleware
 * returns `next()`; a handler returns its response.
 */
export type RouteHandler<V extends object = object, Extra extends object = object> = (
  c: EmulatorContext<V, Extra>,
  next: Next,
  // biome-ignore lint/suspicious/noConfusingVoidType: `return next()` in middleware yields Promise<void>.
) => Response | Promise<Response | void>;

export interface EmulatorServerOptions<Extra extends object> {
  /** Names the emulator in messages and the 501 body (`daytona`, `managed-agents`). */
  name: string;
  /** The vendor's error body. Default `{ error: { code, message }, requestId }`. */
  errorResponse?: ErrorResponder;
  /** Id for each request (`req_01...`); default a UUID. */
  requestId?: () => string;
  /** Vendor fields added to each request record when the request arrives (a header, a credential kind). */
  describeRequest?: (c: Context<{ Bindings: HttpBindings }>) => Extra;
  /**
   * Called for each request no route matched, after it was answered 501. Default: one line on stderr, so
   * an SDK upgrade that calls something new is seen even when the test around it passes.
   */
  onUnhandled?: (record: RequestRecord & Extra) => void;
  /** Keep at most this many request records. Default 10 000. */
  requestLogLimit?: number;
}

export interface ListenOptions {
  /** A loopback address; anything else is refused. Default 127.0.0.1. */
  host?: string;
  /** 0 (the default) picks a free port. */
  port?: number;
}

/**
 * The HTTP side of a loopback vendor emulator: routes on hono, a request log, fault rules, the vendor's
 * error bodies, and a loud 501 for any route it does not know.
 *
 * Each route runs `[the route's middleware..., fault rules, handler]`: faults act after authentication and
 * lookups, where a real server's overload or crash would surface, and a fault never hides a 401 or 404.
 */
export class EmulatorServer<V extends object = object, Extra extends object = object> {
  readonly name: string;
  /** The underlying hono app, for what the kit does not wrap (sub-apps, hono middleware). */
  readonly app: Hono<EmulatorEnv<V, Extra>>;
  readonly requests: RequestLog<Extra>;
  readonly faults = new FaultInjector();
  readonly #routes: string[] = [];
  readonly #errorResponse: ErrorResponder;
  readonly #onUnhandled: (record: RequestRecord & Extra) => void;
  #server: Server | undefined;
  #url = '';

  constructor(options: EmulatorServerOptions<Extra>) {
    this.name = options.name;
    this.requests = new RequestLog<Extra>(options.requestLogLimit);
    this.#errorResponse = options.errorResponse ?? defaultErrorResponse;
    this.#onUnhandled =
      options.onUnhandled ??
      ((record) =>
        process.stderr.write(
          `${this.name} emulator: 501 for ${record.method} ${record.path}: no such route (is the SDK calling something new?)\n`,
        ));
    const newRequestId = options.requestId ?? randomUUID;
    const describe = options.describeRequest ?? (() => ({}) as Extra);
    this.app = new Hono<EmulatorEnv<V, Extra>>();

    this.app.use('*', async (context, next) => {
      const c = context as unknown as Context<{ Bindings: HttpBindings; Variables: KitVariables<Extra> }>;
      const requestId = newRequestId();
      const record = this.requests.add({
        requestId,
        method: c.req.method,
        path: new URL(c.req.url).pathname,
        route: null,
        status: 0,
        ...describe(c as unknown as Context<{ Bindings: HttpBindings }>),
      });
      c.set('requestId', requestId);
      c.set('record', record);
      // The status is read off the Node response, so streamed answers and handler-written ones count too.
      const outgoing = c.env.outgoing;
      outgoing.on('finish', () => {
        if (record.fault !== 'drop') record.status = outgoing.statusCode;
      });
      outgoing.on('close', () => {
        if (record.fault !== 'drop') record.status ||= outgoing.statusCode;
      });
      await next();
    });

    this.app.notFound((c) => {
      const record = c.get('record');
      record.unhandled = true;
      queueMicrotask(() => this.#onUnhandled(record));
      const error = new HttpError(
        501,
        `the ${this.name} emulator does not implement ${c.req.method} ${record.path}: add a route for it (or the SDK in use calls an endpoint the emulator has not learnt yet)`,
        { code: 'not_implemented', retryable: false },
      );
      return this.errorResponse(c, error);
    });

    this.app.onError((error, c) => {
      if (c.env.outgoing.headersSent) {
        // A handler failed after it began streaming: the only honest signal left is a broken connection.
        c.env.outgoing.destroy();
        return RESPONSE_ALREADY_SENT;
      }
      return this.errorResponse(c, toHttpError(error));
    });
  }

  /** Base URL once listening, `http://127.0.0.1:<port>`. */
  get url(): string {
    if (!this.#url) throw new Error(`${this.name} emulator: not listening yet; await listen() first`);
    return this.#url;
  }

  /** Every registered route, `METHOD /path/:param`, in registration order. */
  get routes(): readonly string[] {
    return this.#routes;
  }

  /** Requests no route matched (each was answered 501). A contract test can assert this stays empty. */
  get unhandled(): Array<RequestRecord & Extra> {
    return this.requests.entries.filter((record) => record.unhandled);
  }

  /**
   * Register a route: any middleware (authentication, lookups), then the handler. Paths use hono's syntax
   * (`/v1/sessions/:sessionId`). Routes are tried in registration order, so register a literal segment
   * (`/work/poll`) before the parameter it would otherwise match (`/work/:workId`).
   */
  on(method: string, path: string, ...handlers: RouteHandler<V, Extra>[]): this {
    const handler = handlers.at(-1);
    if (!handler) throw new Error(`${this.name} emulator: route ${method} ${path} has no handler`);
    const route = `${method.toUpperCase()} ${path}`;
    this.#routes.push(route);
    const mark: RouteHandler<V, Extra> = (c, next) => {
      c.get('record').route = route;
      return next();
    };
    const chain = [mark, ...handlers.slice(0, -1), this.#faultStage, handler];
    // hono's overloads type each handler position separately; the chain is uniform, so register it plainly.
    const register = this.app.on as unknown as (
      method: string,
      path: string,
      ...chain: MiddlewareHandler[]
    ) => void;
    register.call(this.app, method.toUpperCase(), path, ...(chain as unknown as MiddlewareHandler[]));
    return this;
  }

  get(path: string, ...handlers: RouteHandler<V, Extra>[]): this {
    return this.on('GET', path, ...handlers);
  }

  post(path: string, ...handlers: RouteHandler<V, Extra>[]): this {
    return this.on('POST', path, ...handlers);
  }

  put(path: string, ...handlers: RouteHandler<V, Extra>[]): this {
    return this.on('PUT', path, ...handlers);
  }

  patch(path: string, ...handlers: RouteHandler<V, Extra>[]): this {
    return this.on('PATCH', path, ...handlers);
  }

  delete(path: string, ...handlers: RouteHandler<V, Extra>[]): this {
    return this.on('DELETE', path, ...handlers);
  }

  /** The vendor's error body for `error`, as a response (for handlers that answer an error without throwing). */
  errorResponse(c: Context<EmulatorEnv<V, Extra>>, error: HttpError): Response {
    const { body, headers } = this.#errorResponse(error, { requestId: c.get('requestId') });
    return new Response(JSON.stringify(body), {
      status: error.status,
      headers: { 'content-type': 'application/json', ...headers },
    });
  }

  /** Start listening on loopback (127.0.0.1 and a free port by default); resolves with the base URL. */
  async listen(options: ListenOptions = {}): Promise<string> {
    if (this.#server) throw new Error(`${this.name} emulator: already listening at ${this.#url}`);
    const host = options.host ?? '127.0.0.1';
    assertLoopbackHost(this.name, host);
    // Not overriding the global Request/Response: the SDK under test runs in the same process.
    const server = createAdaptorServer({ fetch: this.app.fetch, overrideGlobalObjects: false }) as Server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port ?? 0, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.#server = server;
    server.on('connection', (socket) => {
      if (this.#unref) socket.unref();
    });
    if (this.#unref) server.unref();
    const address = server.address() as AddressInfo;
    const hostPart = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    this.#url = `http://${hostPart}:${address.port}`;
    return this.#url;
  }

  /**
   * Let the process exit while the server listens (an emulator started on demand, e.g. by an adapter's
   * `createFromConfig` for an offline demo, must not keep its process alive). Connections are unref'd too.
   */
  unref(): void {
    this.#unref = true;
    this.#server?.unref();
  }

  #unref = false;

  /** Close every connection (open streams and long polls included) and stop listening. */
  async close(): Promise<void> {
    const server = this.#server;
    if (!server) return;
    this.#server = undefined;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  readonly #faultStage: RouteHandler<V, Extra> = async (c, next) => {
    const record = c.get('record');
    const action = this.faults.take(c.req.method, record.path);
    if (!action) return next();
    record.fault = action.kind;
    if (action.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, action.delayMs));
    if (action.kind === 'drop') {
      record.status = 0;
      c.env.incoming.socket.destroy();
      return RESPONSE_ALREADY_SENT;
    }
    if (action.error) throw action.error;
    return next();
  };
}

/**
 * A path parameter of the matched route (`param(c, 'sessionId')` for `/v1/sessions/:sessionId`),
 * percent-decoded. A name the route does not declare is a bug in the emulator, and throws.
 */
export function param(c: Context, name: string): string {
  const value = c.req.param(name);
  if (value === undefined) throw new Error(`route ${c.req.routePath} has no parameter :${name}`);
  return value;
}

/** An `HttpError` as is; anything else is an emulator bug, answered 500 with its message. */
function toHttpError(error: unknown): HttpError {
  if (HttpError.isInstance(error)) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new HttpError(500, `emulator bug: ${message}`, { code: 'internal_error' });
}

/** Create an emulator server; register routes on it, then `listen()`. */
export function createEmulatorServer<V extends object = object, Extra extends object = object>(
  options: EmulatorServerOptions<Extra>,
): EmulatorServer<V, Extra> {
  return new EmulatorServer<V, Extra>(options);
}

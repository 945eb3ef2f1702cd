import { randomBytes } from 'node:crypto';
import type { SandboxProvider } from '@statebox/core';
import {
  BackingSandboxes,
  createEmulatorServer,
  type EmulatorServer,
  type EventStream,
  HttpError,
  openEventStream,
  param,
  type RouteHandler,
  readJsonObject,
} from '../src/index.js';

/**
 * A small vendor emulator of the kind the kit is for: key auth, a vendor error body
 * (`{ success: false, errors: [{ code, message }] }`), sandboxes backed by a statebox provider, and a
 * server-sent log stream. The tests drive it with plain `fetch`, as a vendor SDK would.
 */
export interface ToyVendor {
  server: EmulatorServer<{ caller: string }, { key: string | null }>;
  sandboxes: BackingSandboxes | undefined;
  streams: Set<EventStream>;
  url: string;
  close(): Promise<void>;
}

export const TOY_KEY = 'toy-key-1';

export async function startToyVendor(options: { provider?: SandboxProvider } = {}): Promise<ToyVendor> {
  const server = createEmulatorServer<{ caller: string }, { key: string | null }>({
    name: 'toy',
    requestId: () => `req-${randomBytes(4).toString('hex')}`,
    describeRequest: (c) => ({ key: c.req.header('x-toy-key') ?? null }),
    errorResponse: (error, { requestId }) => ({
      body: { success: false, errors: [{ code: error.code ?? 'error', message: error.message }], requestId },
      headers: error.retryable === false ? { 'x-should-retry': 'false' } : undefined,
    }),
    onUnhandled: () => {},
  });
  const sandboxes = options.provider
    ? new BackingSandboxes({ emulator: 'toy', provider: options.provider })
    : undefined;
  const streams = new Set<EventStream>();
  const notFound = (id: string) => new HttpError(404, `sandbox ${id} not found`, { code: 'not_found' });

  const auth: RouteHandler<{ caller: string }, { key: string | null }> = (c, next) => {
    if (c.req.header('x-toy-key') !== TOY_KEY) throw new HttpError(401, 'bad key', { code: 'unauthorized' });
    c.set('caller', 'user');
    return next();
  };

  server.get('/v1/ping', auth, (c) => c.json({ pong: true, caller: c.get('caller') }));
  server.post('/v1/echo', auth, async (c) => c.json(await readJsonObject(c, 64)));
  server.get('/v1/crash', auth, () => {
    throw new Error('something broke');
  });
  server.get('/v1/logs', auth, (c) => {
    const { stream, response } = openEventStream(c, { heartbeatMs: 20 });
    streams.add(stream);
    stream.onClose(() => streams.delete(stream));
    return response;
  });
  server.post('/v1/sandboxes', auth, async (c) => {
    if (!sandboxes) throw new HttpError(501, 'no provider', { code: 'not_implemented' });
    const id = `sbx-${randomBytes(4).toString('hex')}`;
    await sandboxes.create(id);
    return c.json({ id }, 201);
  });
  server.post('/v1/sandboxes/:id/exec', auth, async (c) => {
    const sandbox = sandboxes?.require(param(c, 'id'), notFound);
    if (!sandbox) throw notFound(param(c, 'id'));
    const body = await readJsonObject(c);
    const result = await sandbox.exec(String(body.command));
    return c.json({ exit_code: result.exitCode, stdout: result.stdout, stderr: result.stderr });
  });
  server.delete('/v1/sandboxes/:id', auth, async (c) => {
    await sandboxes?.destroy(param(c, 'id'));
    return c.body(null, 204);
  });

  const url = await server.listen();
  return {
    server,
    sandboxes,
    streams,
    url,
    async close() {
      for (const stream of streams) stream.end();
      await server.close();
      await sandboxes?.close();
    },
  };
}

import { type EmulatorServer, param } from '@statebox/emulator-kit';
import { API, allow } from '../auth.js';
import type { Emulator } from '../emulator.js';
import { badRequest, forbidden } from '../errors.js';
import { body, type Ctx, paginate, query, type RequestFields, type RouteVariables, reply } from '../http.js';

/**
 * `/v1/memory_stores`: stores and their memories. Memory endpoints take the API key or the sessions token
 * of a session that attaches the store; never an environment key.
 */
export function memoryStoreRoutes(
  server: EmulatorServer<RouteVariables, RequestFields>,
  emulator: Emulator,
): void {
  const memory = emulator.memory;
  const apiOrSession = allow(emulator, ['api', 'session']);
  const view = (c: Ctx, fallback: string) => query(c).get('view') ?? fallback;
  const store = (c: Ctx) => {
    const record = memory.get(param(c, 'storeId'));
    const principal = c.get('principal');
    if (principal.kind === 'session') {
      const session = emulator.session(principal.sessionId);
      const attached = session.resources.some(
        (resource) => resource.type === 'memory_store' && resource.memory_store_id === record.id,
      );
      if (!attached) throw forbidden(`memory store ${record.id} is not attached to session ${session.id}`);
    }
    return record;
  };
  const base = '/v1/memory_stores/:storeId';

  server.post('/v1/memory_stores', allow(emulator, API), async (c) => {
    const params = await body(c);
    if (typeof params.name !== 'string' || params.name === '')
      throw badRequest('name: a non-empty string is required');
    const description = typeof params.description === 'string' ? params.description : undefined;
    return reply(c, memory.describeStore(memory.create({ name: params.name, description })));
  });

  server.get(base, apiOrSession, (c) => reply(c, memory.describeStore(store(c))));

  server.get(`${base}/memories`, apiOrSession, (c) => {
    const record = store(c);
    const search = query(c);
    const list = memory.list(record, search.get('path_prefix'));
    const { data, next_page } = paginate(
      list.map((m) => memory.describe(record, m, view(c, 'basic'))),
      search,
      20,
      1000,
    );
    return reply(c, { data, next_page });
  });

  server.post(`${base}/memories`, apiOrSession, async (c) => {
    const record = store(c);
    const params = await body(c);
    const created = memory.createMemory(record, params.path as string, params.content as string);
    return reply(c, memory.describe(record, created, view(c, 'full')));
  });

  server.get(`${base}/memories/:memoryId`, apiOrSession, (c) => {
    const record = store(c);
    return reply(
      c,
      memory.describe(record, memory.findMemory(record, param(c, 'memoryId')), view(c, 'full')),
    );
  });

  server.post(`${base}/memories/:memoryId`, apiOrSession, async (c) => {
    const record = store(c);
    const updated = memory.updateMemory(record, param(c, 'memoryId'), await body(c));
    return reply(c, memory.describe(record, updated, view(c, 'full')));
  });

  server.delete(`${base}/memories/:memoryId`, apiOrSession, (c) => {
    const record = store(c);
    memory.deleteMemory(record, param(c, 'memoryId'), query(c).get('expected_content_sha256'));
    return reply(c, { type: 'memory_deleted', id: param(c, 'memoryId') });
  });
}

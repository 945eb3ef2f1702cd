import { type EmulatorServer, param } from '@statebox/emulator-kit';
import { ANY, API, allow, checkSession } from '../auth.js';
import type { Emulator } from '../emulator.js';
import { body, type Ctx, paginate, query, type RequestFields, type RouteVariables, reply } from '../http.js';
import { now } from '../ids.js';
import { describeSession } from '../sessions.js';

/** `/v1/sessions`: create, list, retrieve, update, archive, delete. Events are in `events.ts`. */
export function sessionRoutes(
  server: EmulatorServer<RouteVariables, RequestFields>,
  emulator: Emulator,
): void {
  const api = allow(emulator, API);
  const session = (c: Ctx) => checkSession(emulator, c.get('principal'), param(c, 'sessionId'));

  server.post('/v1/sessions', api, async (c) =>
    reply(c, describeSession(emulator.createSession(await body(c)))),
  );

  server.get('/v1/sessions', api, (c) => {
    const search = query(c);
    const includeArchived = search.get('include_archived') === 'true';
    const list = [...emulator.sessions.values()]
      .filter((s) => !s.deleted && (includeArchived || s.archivedAt === null))
      .sort((a, b) => b.createdAt.localeCompare(a.createdAt));
    return reply(c, paginate(list.map(describeSession), search, 20, 100));
  });

  server.get('/v1/sessions/:sessionId', allow(emulator, ANY), (c) => reply(c, describeSession(session(c))));

  server.post('/v1/sessions/:sessionId', api, async (c) => {
    const record = session(c);
    const params = await body(c);
    if (typeof params.title === 'string') record.title = params.title;
    const patch = params.metadata as Record<string, string | null> | undefined;
    for (const [key, value] of Object.entries(patch ?? {})) {
      if (value === null) delete record.metadata[key];
      else record.metadata[key] = String(value);
    }
    record.updatedAt = now();
    return reply(c, describeSession(record));
  });

  server.post('/v1/sessions/:sessionId/archive', api, (c) => {
    const record = session(c);
    emulator.archiveSession(record);
    return reply(c, describeSession(record));
  });

  server.delete('/v1/sessions/:sessionId', api, (c) => {
    const record = session(c);
    emulator.deleteSession(record);
    return reply(c, { type: 'session_deleted', id: record.id });
  });
}

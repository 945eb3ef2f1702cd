import { type EmulatorServer, openEventStream, param } from '@statebox/emulator-kit';
import { ANY, allow, checkSession } from '../auth.js';
import type { Emulator } from '../emulator.js';
import { badRequest } from '../errors.js';
import {
  body,
  type Ctx,
  type Handler,
  paginate,
  query,
  queryList,
  type RequestFields,
  type RouteVariables,
  reply,
} from '../http.js';

/**
 * `/v1/sessions/{id}/events`: list, the SSE stream, and send. A send's session and body are resolved in
 * middleware, before the kit's fault stage, so an injected send failure (`faults.failSends`) answers
 * only a request that would otherwise have reached validation.
 */
export function eventRoutes(server: EmulatorServer<RouteVariables, RequestFields>, emulator: Emulator): void {
  const any = allow(emulator, ANY);
  const session = (c: Ctx) => checkSession(emulator, c.get('principal'), param(c, 'sessionId'));

  server.get('/v1/sessions/:sessionId/events', any, (c) => {
    const record = session(c);
    const search = query(c);
    const types = queryList(search, 'types');
    const order = search.get('order') ?? 'asc';
    if (order !== 'asc' && order !== 'desc') throw badRequest('order must be asc or desc');
    let events = record.events.filter((e) => types.length === 0 || types.includes(e.type));
    if (order === 'desc') events = [...events].reverse();
    const { data, next_page } = paginate(events, search, 20, 1000);
    return reply(c, { data, next_page });
  });

  server.get('/v1/sessions/:sessionId/events/stream', any, (c) => {
    const record = session(c);
    // Only events emitted after the stream opens are sent, as the real stream does.
    const { stream, response } = openEventStream(c, { heartbeatMs: emulator.sseHeartbeatMs });
    if (record.status === 'terminated') {
      stream.end();
      return response;
    }
    record.streams.add(stream);
    stream.onClose(() => record.streams.delete(stream));
    return response;
  });

  const resolveSend: Handler = async (c, next) => {
    const record = session(c);
    c.set('send', { session: record, body: await body(c) });
    return next();
  };
  server.post('/v1/sessions/:sessionId/events', any, resolveSend, (c) => {
    const { session: record, body: params } = c.get('send')!;
    if (!Array.isArray(params.events) || params.events.length === 0) {
      throw badRequest('events: a non-empty array is required');
    }
    return reply(c, { data: emulator.sendEvents(record, params.events as Record<string, unknown>[]) });
  });
}

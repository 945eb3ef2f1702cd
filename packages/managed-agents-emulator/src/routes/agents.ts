import { type EmulatorServer, param } from '@statebox/emulator-kit';
import { API, allow } from '../auth.js';
import type { Emulator } from '../emulator.js';
import { body, paginate, query, type RequestFields, type RouteVariables, reply } from '../http.js';
import { now } from '../ids.js';

/** `/v1/agents`: create, list, retrieve, archive. */
export function agentRoutes(server: EmulatorServer<RouteVariables, RequestFields>, emulator: Emulator): void {
  const api = allow(emulator, API);

  server.post('/v1/agents', api, async (c) => reply(c, emulator.createAgent(await body(c))));

  server.get('/v1/agents', api, (c) =>
    reply(
      c,
      paginate(
        [...emulator.agents.values()].map((agent) => agent.body),
        query(c),
        20,
        100,
      ),
    ),
  );

  server.get('/v1/agents/:agentId', api, (c) => reply(c, emulator.agentRecord(param(c, 'agentId')).body));

  server.post('/v1/agents/:agentId/archive', api, (c) => {
    const agent = emulator.agentRecord(param(c, 'agentId'));
    agent.body.archived_at ??= now();
    return reply(c, agent.body);
  });
}

import { type EmulatorServer, param } from '@statebox/emulator-kit';
import { ANY, API, allow, checkEnvironment } from '../auth.js';
import type { Emulator, EnvironmentRecord } from '../emulator.js';
import { badRequest } from '../errors.js';
import { body, paginate, query, type RequestFields, type RouteVariables, reply } from '../http.js';
import { now } from '../ids.js';

/** Emulator-only: the real API shows the environment key only in the Console. */
const KEY_HEADER = 'x-emulator-environment-key';

/** `/v1/environments`: create, list, retrieve, archive. The work queue is in `work.ts`. */
export function environmentRoutes(
  server: EmulatorServer<RouteVariables, RequestFields>,
  emulator: Emulator,
): void {
  const api = allow(emulator, API);

  server.post('/v1/environments', api, async (c) => {
    const params = await body(c);
    if (typeof params.name !== 'string' || params.name === '')
      throw badRequest('name: a non-empty string is required');
    const config = (params.config as Record<string, unknown> | null | undefined) ?? {
      type: 'cloud',
      networking: { type: 'unrestricted' },
      packages: {},
    };
    const environment = emulator.createEnvironment(params.name, config);
    environment.description = typeof params.description === 'string' ? params.description : null;
    environment.metadata = (params.metadata as Record<string, string>) ?? {};
    c.header(KEY_HEADER, environment.environmentKey);
    return reply(c, describeEnvironment(environment, true));
  });

  server.get('/v1/environments', api, (c) => {
    const includeArchived = query(c).get('include_archived') === 'true';
    const list = [...emulator.environments.values()].filter((e) => includeArchived || e.archivedAt === null);
    return reply(
      c,
      paginate(
        list.map((e) => describeEnvironment(e, false)),
        query(c),
        20,
        100,
      ),
    );
  });

  server.get('/v1/environments/:environmentId', allow(emulator, ANY), (c) => {
    const principal = c.get('principal');
    const environment = checkEnvironment(emulator, principal, param(c, 'environmentId'));
    if (principal.kind === 'api') c.header(KEY_HEADER, environment.environmentKey);
    return reply(c, describeEnvironment(environment, principal.kind === 'api'));
  });

  server.post('/v1/environments/:environmentId/archive', api, (c) => {
    const environment = emulator.environment(param(c, 'environmentId'));
    environment.archivedAt ??= now();
    environment.updatedAt = now();
    return reply(c, describeEnvironment(environment, false));
  });
}

function describeEnvironment(environment: EnvironmentRecord, withKey: boolean): Record<string, unknown> {
  const body: Record<string, unknown> = {
    type: 'environment',
    id: environment.id,
    name: environment.name,
    description: environment.description,
    config: environment.config,
    metadata: environment.metadata,
    scope: 'organization',
    archived_at: environment.archivedAt,
    created_at: environment.createdAt,
    updated_at: environment.updatedAt,
  };
  if (withKey) body.emulator_environment_key = environment.environmentKey;
  return body;
}

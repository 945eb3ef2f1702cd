import { type EmulatorServer, param } from '@statebox/emulator-kit';
import { ANY, allow } from '../auth.js';
import type { Emulator } from '../emulator.js';
import { type Ctx, type RequestFields, type RouteVariables, reply } from '../http.js';

/** `/v1/skills/{id}/versions/{version}`: a version's description and its files as a tar. */
export function skillRoutes(server: EmulatorServer<RouteVariables, RequestFields>, emulator: Emulator): void {
  const any = allow(emulator, ANY);
  const version = (c: Ctx) => emulator.skills.resolve(param(c, 'skillId'), param(c, 'version'));

  server.get('/v1/skills/:skillId/versions/:version', any, (c) =>
    reply(c, emulator.skills.describe(version(c))),
  );

  server.get('/v1/skills/:skillId/versions/:version/content', any, async (c) => {
    const record = version(c);
    const archive = await emulator.skills.archive(record);
    return c.body(archive, 200, {
      'content-type': 'application/x-tar',
      'content-length': String(archive.length),
      'content-disposition': `attachment; filename="${record.definition.name}.tar"`,
    });
  });
}

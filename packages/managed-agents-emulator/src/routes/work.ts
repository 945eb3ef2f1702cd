import { type EmulatorServer, param } from '@statebox/emulator-kit';
import { ANY, API, allow, checkEnvironment, checkWork, WORKER } from '../auth.js';
import type { Emulator } from '../emulator.js';
import {
  body,
  type Ctx,
  paginate,
  query,
  queryInt,
  type RequestFields,
  type RouteVariables,
  reply,
} from '../http.js';

/**
 * `/v1/environments/{id}/work`: the worker's queue (poll, ack, heartbeat, stop, list, stats) and the
 * API key's retrieve and update. `poll` and `stats` are registered before `{workId}`, which they would
 * otherwise match.
 */
export function workRoutes(server: EmulatorServer<RouteVariables, RequestFields>, emulator: Emulator): void {
  const environmentId = (c: Ctx) => param(c, 'environmentId');
  const work = (c: Ctx) => checkWork(emulator, c.get('principal'), environmentId(c), param(c, 'workId'));
  const describe = (item: ReturnType<typeof work>) => emulator.work.describe(item, false, emulator.url);
  const base = '/v1/environments/:environmentId/work';

  server.get(`${base}/poll`, allow(emulator, ['environment']), async (c) => {
    checkEnvironment(emulator, c.get('principal'), environmentId(c));
    const search = query(c);
    const blockMs = queryInt(search, 'block_ms', 1, 999);
    const reclaim = queryInt(search, 'reclaim_older_than_ms', 0, Number.MAX_SAFE_INTEGER) ?? 5_000;
    const workerId = c.req.header('anthropic-worker-id') ?? null;
    const item = await emulator.work.poll(environmentId(c), {
      blockMs,
      reclaimOlderThanMs: reclaim,
      workerId,
    });
    return reply(c, item ? emulator.work.describe(item, true, emulator.url) : null);
  });

  server.get(`${base}/stats`, allow(emulator, ['api', 'environment']), (c) => {
    checkEnvironment(emulator, c.get('principal'), environmentId(c));
    return reply(c, emulator.work.stats(environmentId(c)));
  });

  server.get(base, allow(emulator, ['environment']), (c) => {
    checkEnvironment(emulator, c.get('principal'), environmentId(c));
    const items = emulator.work.forEnvironment(environmentId(c)).map(describe);
    const { data, next_page } = paginate(items, query(c), 20, 100);
    return reply(c, { data, next_page });
  });

  server.get(`${base}/:workId`, allow(emulator, API), (c) => reply(c, describe(work(c))));

  server.post(`${base}/:workId`, allow(emulator, API), async (c) => {
    const item = work(c);
    const patch = (await body(c)).metadata as Record<string, string | null> | undefined;
    for (const [key, value] of Object.entries(patch ?? {})) {
      if (value === null) delete item.metadata[key];
      else item.metadata[key] = String(value);
    }
    return reply(c, describe(item));
  });

  server.post(`${base}/:workId/ack`, allow(emulator, ['environment']), (c) =>
    reply(c, describe(emulator.work.ack(work(c)))),
  );

  server.post(`${base}/:workId/heartbeat`, allow(emulator, WORKER), (c) => {
    const item = work(c);
    const search = query(c);
    const ttl = queryInt(search, 'desired_ttl_seconds', 1, 86_400);
    return reply(c, emulator.work.heartbeat(item, search.get('expected_last_heartbeat'), ttl));
  });

  server.post(`${base}/:workId/stop`, allow(emulator, ANY), async (c) => {
    const item = work(c);
    const params = await body(c);
    return reply(c, describe(emulator.work.stop(item, params.force === true)));
  });
}

import { param, readJsonObject } from '@statebox/emulator-kit';
import type { DaytonaServer } from '../server.js';
import type { DaytonaState } from '../state.js';

/**
 * start, stop, pause, archive and fork. Each answers at once with the sandbox in its transitional state
 * (`starting`, `stopping`, ...) and finishes in the background, as Daytona does; the SDK then polls.
 */
export function registerLifecycleRoutes(server: DaytonaServer, state: DaytonaState): void {
  server.post('/api/sandbox/:id/start', async (c) => {
    const record = state.require(param(c, 'id'));
    await state.start(record);
    return c.json(state.dto(record));
  });

  server.post('/api/sandbox/:id/stop', async (c) => {
    const record = state.require(param(c, 'id'));
    await state.stop(record);
    return c.json(state.dto(record));
  });

  server.post('/api/sandbox/:id/pause', async (c) => {
    const record = state.require(param(c, 'id'));
    await state.pause(record);
    return c.json(state.dto(record));
  });

  server.post('/api/sandbox/:id/archive', async (c) => {
    const record = state.require(param(c, 'id'));
    await state.archive(record);
    return c.json(state.dto(record));
  });

  server.post('/api/sandbox/:id/fork', async (c) => {
    const source = state.require(param(c, 'id'));
    const body = await readJsonObject(c);
    const child = await state.fork(source, typeof body.name === 'string' ? body.name : undefined);
    return c.json(state.dto(child));
  });

  server.get('/api/sandbox/:id/forks', (c) => {
    const record = state.require(param(c, 'id'));
    const children = [...state.sandboxes.values()].filter((other) => other.parentId === record.id);
    return c.json(children.map((child) => state.dto(child)));
  });

  server.get('/api/sandbox/:id/parent', (c) => {
    const record = state.require(param(c, 'id'));
    if (!record.parentId) return c.json(null);
    return c.json(state.dto(state.require(record.parentId)));
  });
}

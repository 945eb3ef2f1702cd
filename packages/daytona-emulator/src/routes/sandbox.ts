import { HttpError, param, readJsonObject } from '@statebox/emulator-kit';
import type { DaytonaServer } from '../server.js';
import { badRequest, type DaytonaState } from '../state.js';

/** `/api/sandbox`: create, get, list (label filter, cursor pages), delete, labels and the intervals. */
export function registerSandboxRoutes(server: DaytonaServer, state: DaytonaState): void {
  server.post('/api/sandbox', async (c) => {
    const body = await readJsonObject(c);
    if (body.snapshot !== undefined && body.snapshot !== null) {
      throw badRequest('the emulator has no snapshots to create from; omit snapshot');
    }
    if (body.buildInfo !== undefined && body.buildInfo !== null) {
      throw badRequest('the emulator does not build images; omit image');
    }
    const record = await state.create(body);
    return c.json(state.dto(record));
  });

  server.get('/api/sandbox', (c) => {
    const labels = parseLabels(c.req.query('labels'));
    const states = c.req.queries('states');
    const limit = Math.min(Math.max(Number(c.req.query('limit') ?? 100) || 100, 1), 200);
    const cursor = Number(c.req.query('cursor') ?? 0) || 0;
    const matching = [...state.sandboxes.values()].filter(
      (record) =>
        Object.entries(labels).every(([key, value]) => record.labels[key] === value) &&
        (!states || states.includes(record.state)),
    );
    const page = matching.slice(cursor, cursor + limit);
    const next = cursor + limit < matching.length ? String(cursor + limit) : null;
    return c.json({ items: page.map((record) => state.dto(record)), nextCursor: next });
  });

  server.get('/api/sandbox/:id', (c) => c.json(state.dto(state.require(param(c, 'id')))));

  server.get('/api/sandbox/:id/toolbox-proxy-url', (c) => {
    state.require(param(c, 'id'));
    return c.json({ url: state.options.toolboxProxyUrl() });
  });

  server.delete('/api/sandbox/:id', async (c) => {
    const record = state.require(param(c, 'id'));
    await state.destroy(record);
    return c.json({ ...state.dto(record), state: 'destroying' });
  });

  server.put('/api/sandbox/:id/labels', async (c) => {
    const record = state.require(param(c, 'id'));
    const body = await readJsonObject(c);
    const labels = body.labels;
    if (!labels || typeof labels !== 'object' || Array.isArray(labels))
      throw badRequest('labels must be an object');
    const next: Record<string, string> = {};
    for (const [key, value] of Object.entries(labels)) {
      if (typeof value !== 'string') throw badRequest(`label ${key} must be a string`);
      next[key] = value;
    }
    record.labels = next;
    record.updatedAt = new Date().toISOString();
    return c.json({ labels: record.labels });
  });

  for (const [segment, field] of [
    ['autostop', 'autoStopInterval'],
    ['autopause', 'autoPauseInterval'],
    ['autoarchive', 'autoArchiveInterval'],
    ['autodelete', 'autoDeleteInterval'],
  ] as const) {
    server.post(`/api/sandbox/:id/${segment}/:interval`, (c) => {
      const record = state.require(param(c, 'id'));
      const value = Number(param(c, 'interval'));
      if (!Number.isInteger(value) || value < -1) throw badRequest(`${field} must be an integer`);
      record[field] = field === 'autoArchiveInterval' && value === 0 ? 30 * 24 * 60 : value;
      return c.json(state.dto(record));
    });
  }

  server.post('/api/sandbox/:id/last-activity', (c) => {
    const record = state.require(param(c, 'id'));
    state.touch(record);
    return c.body(null, 201);
  });
}

function parseLabels(raw: string | undefined): Record<string, string> {
  if (!raw) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new HttpError(400, 'labels must be a JSON object of strings', { code: 'Bad Request' });
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new HttpError(400, 'labels must be a JSON object of strings', { code: 'Bad Request' });
  }
  return parsed as Record<string, string>;
}

/**
 * `@statebox/cloudflare/worker`: the statebox Worker. Deploy it with the Sandbox Durable Object, the
 * registry and an R2 bucket (see examples/cloudflare/wrangler.jsonc):
 *
 * ```ts
 * export { ContainerProxy, Sandbox, StateboxRegistry } from '@statebox/cloudflare/worker';
 * export { default } from '@statebox/cloudflare/worker';
 * ```
 *
 * Every route but `GET /v1/health` needs `Authorization: Bearer <STATEBOX_TOKEN>`.
 */
import { direct } from './direct.js';
import { type ExecBody, exec, kill } from './exec.js';
import { commitWrite, discardWrite, readFile, writeFile } from './files.js';
import { errorResponse, json, readJson, WorkerError } from './http.js';
import type { SandboxRecord } from './registry.js';
import { type Env, info, registry, translate } from './sandboxes.js';
import { type CreateBody, create, destroy, fork, resume, suspend } from './state.js';

export { ContainerProxy, Sandbox } from '@cloudflare/sandbox';
export { StateboxRegistry } from './registry.js';
export type { Env } from './sandboxes.js';

const encoder = new TextEncoder();

/** Constant-time comparison of the bearer token with the secret (both hashed first to equal lengths). */
async function authorized(request: Request, env: Env): Promise<void> {
  if (!env.STATEBOX_TOKEN) {
    throw new WorkerError(
      'not_configured',
      'The Worker has no STATEBOX_TOKEN secret: run `wrangler secret put STATEBOX_TOKEN`.',
    );
  }
  const header = request.headers.get('authorization') ?? '';
  const given = header.startsWith('Bearer ') ? header.slice(7) : '';
  const [a, b] = await Promise.all(
    [given, env.STATEBOX_TOKEN].map(
      async (value) => new Uint8Array(await crypto.subtle.digest('SHA-256', encoder.encode(value))),
    ),
  );
  if (!given || !crypto.subtle.timingSafeEqual(a!, b!)) {
    throw new WorkerError(
      'unauthorized',
      'Missing or wrong bearer token: send Authorization: Bearer <token>, the value of the Worker secret STATEBOX_TOKEN (STATEBOX_CLOUDFLARE_TOKEN for the Node provider).',
    );
  }
}

async function route(request: Request, env: Env): Promise<Response> {
  const url = new URL(request.url);
  const parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
  const method = request.method;
  if (parts[0] !== 'v1') throw new WorkerError('not_found', `No route ${method} ${url.pathname}.`);
  if (parts[1] === 'health' && parts.length === 2) return json({ ok: true });
  await authorized(request, env);
  if (parts[1] === 'direct' && parts[2] && method === 'POST')
    return json(await direct(env, parts[2], await readJson(request)));
  if (parts[1] !== 'sandboxes') throw new WorkerError('not_found', `No route ${method} ${url.pathname}.`);
  const id = parts[2];
  const action = parts[3];

  if (!id) {
    if (method === 'POST') return json(await create(env, await readJson<CreateBody>(request)), 201);
    if (method === 'GET') {
      const labels = JSON.parse(url.searchParams.get('labels') ?? '{}') as Record<string, string>;
      const records = (await registry(env).list(labels)) as SandboxRecord[];
      return json({ sandboxes: records.map(info) });
    }
  } else if (!action) {
    if (method === 'GET') return json(info(await requireRecordOr404(env, id)));
    if (method === 'DELETE') {
      await destroy(env, id, request.signal);
      return new Response(null, { status: 204 });
    }
  } else if (method === 'POST' && action === 'exec' && parts.length === 4) {
    return exec(env, id, await readJson<ExecBody>(request), request);
  } else if (method === 'POST' && action === 'exec' && parts[5] === 'kill') {
    await kill(env, id, parts[4] ?? '');
    return new Response(null, { status: 204 });
  } else if (action === 'file' && method === 'POST' && parts[4] === 'commit' && parts.length === 5) {
    await commitWrite(env, id, await readJson(request));
    return new Response(null, { status: 204 });
  } else if (action === 'file' && method === 'POST' && parts[4] === 'discard' && parts.length === 5) {
    await discardWrite(env, id, await readJson(request));
    return new Response(null, { status: 204 });
  } else if (action === 'file' && parts.length === 4) {
    const path = url.searchParams.get('path') ?? '';
    if (!path.startsWith('/')) throw new WorkerError('invalid_path', 'path must be absolute.', { path });
    if (method === 'GET') {
      return readFile(env, id, path, Number(url.searchParams.get('maxBytes') ?? Number.MAX_SAFE_INTEGER));
    }
    if (method === 'PUT') {
      const mode = url.searchParams.get('mode');
      const stage = url.searchParams.get('stage') ?? '';
      return json(await writeFile(env, id, path, mode === null ? undefined : Number(mode), stage, request));
    }
  } else if (method === 'POST' && parts.length === 4) {
    if (action === 'suspend') return json(await suspend(env, id, request.signal));
    if (action === 'resume') return json(await resume(env, id, request.signal));
    if (action === 'fork') return json(await fork(env, id, await readJson(request), request.signal), 201);
  }
  throw new WorkerError('not_found', `No route ${method} ${url.pathname}.`);
}

async function requireRecordOr404(env: Env, id: string): Promise<SandboxRecord> {
  const record = (await registry(env).get(id)) as SandboxRecord | null;
  if (!record)
    throw new WorkerError('not_found', `Sandbox ${id} not found: it was destroyed or never existed.`, {
      sandboxId: id,
    });
  return record;
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    try {
      return await route(request, env);
    } catch (error) {
      const parts = new URL(request.url).pathname.split('/');
      const id = parts[2] === 'sandboxes' && parts[3] ? decodeURIComponent(parts[3]) : undefined;
      return errorResponse(await translate(env, error, id, request.method));
    }
  },
} satisfies ExportedHandler<Env>;

// The in-container control server for local runs of @cloudflare/sandbox 0.12.10: it speaks the HTTP
// protocol the SDK's Sandbox Durable Object sends to port 3000 (routes and shapes from the SDK's own
// types, `dist/sandbox-*.d.ts`, and the request log in research/cloudflare-local.md). Cloudflare's own
// server (the `cloudflare/sandbox` image) is not on npm, so this is the one stand-in of the local setup.
//
// Faithful where the statebox Worker depends on it: typed error bodies `{code, message, context,
// httpStatus, timestamp}`, SSE exec and file streams, squashfs backups made with mksquashfs. Every
// request is appended to a JSON-lines log so that a contract test can compare what the SDK sent.
// A route the SDK has not been seen to send answers 501 loudly and is logged, so an SDK upgrade that
// changes the protocol is noticed.
import { appendFileSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:http';
import { handleExecute, handleExecuteStream } from './control-exec.mjs';
import {
  handleBackupCreate,
  handleDelete,
  handleExists,
  handleMkdir,
  handleRead,
  handleReadStream,
  handleWrite,
} from './control-files.mjs';
import { ApiError, errorBody, sendJson } from './control-http.mjs';

const VERSION = '0.12.10';
const PORT = Number(process.env.STATEBOX_CONTROL_PORT ?? 3000);
const LOG = process.env.STATEBOX_CONTROL_LOG ?? '/var/log/statebox/control.jsonl';

/** Sessions: id → { env, cwd }. The real server keeps a bash process per session; commands here get a fresh one. */
const sessions = new Map();

const routes = {
  'GET /': () => ({ success: true, message: 'statebox control server', timestamp: now() }),
  'GET /api/ping': () => ({ success: true, message: 'pong', timestamp: now() }),
  'GET /api/version': () => ({ success: true, version: VERSION, timestamp: now() }),
  'POST /api/session/create': (body) => {
    const id = body.id ?? `session-${Date.now()}`;
    if (sessions.has(id)) {
      throw new ApiError(409, 'SESSION_ALREADY_EXISTS', `Session '${id}' already exists`, { sessionId: id });
    }
    sessions.set(id, { env: body.env ?? {}, cwd: body.cwd ?? '/workspace' });
    return {
      success: true,
      id,
      message: `Session '${id}' created`,
      containerPlacementId: null,
      timestamp: now(),
    };
  },
  'POST /api/session/delete': (body) => {
    sessions.delete(body.sessionId);
    return { success: true, sessionId: body.sessionId, timestamp: now() };
  },
  'GET /api/session/list': () => ({ success: true, sessions: [...sessions.keys()], timestamp: now() }),
  'POST /api/execute': (body) => handleExecute(session(body), body),
  'POST /api/execute/stream': (body, request, response) =>
    handleExecuteStream(session(body), body, request, response),
  'POST /api/read': (body) => handleRead(body),
  'POST /api/read/stream': (body, _request, response) => handleReadStream(body, response),
  'POST /api/write': (body) => handleWrite(body),
  'POST /api/exists': (body) => handleExists(body),
  'POST /api/mkdir': (body) => handleMkdir(body),
  'POST /api/delete': (body) => handleDelete(body),
  'POST /api/backup/create': (body) => handleBackupCreate(body),
  'POST /api/backup/restore': (body) => {
    // Production mounts the archive as a FUSE overlay; containers here have no /dev/fuse, and the SDK
    // only sends this route without `localBucket`.
    throw new ApiError(501, 'BACKUP_RESTORE_FAILED', 'FUSE restore is not available in local containers', {
      dir: body.dir,
    });
  },
};

function session(body) {
  const id = body.sessionId;
  if (id && !sessions.has(id)) {
    // The real server creates a missing session on first use.
    sessions.set(id, { env: {}, cwd: '/workspace' });
  }
  return id ? sessions.get(id) : { env: {}, cwd: '/workspace' };
}

function now() {
  return new Date().toISOString();
}

function log(entry) {
  try {
    appendFileSync(LOG, `${JSON.stringify(entry)}\n`);
  } catch {
    // A read-only or full log disk must not break the protocol.
  }
}

async function readBody(request) {
  const chunks = [];
  for await (const chunk of request) chunks.push(chunk);
  const text = Buffer.concat(chunks).toString('utf8');
  if (!text) return {};
  try {
    return JSON.parse(text);
  } catch {
    throw new ApiError(400, 'VALIDATION_FAILED', 'Request body is not JSON', {});
  }
}

mkdirSync(LOG.slice(0, LOG.lastIndexOf('/')), { recursive: true });

const server = createServer(async (request, response) => {
  const path = new URL(request.url ?? '/', 'http://localhost').pathname;
  const key = `${request.method} ${path}`;
  let body = {};
  try {
    body = request.method === 'POST' ? await readBody(request) : {};
    log({
      time: now(),
      method: request.method,
      path,
      sandboxId: request.headers['x-sandbox-id'] ?? null,
      contentType: request.headers['content-type'] ?? null,
      // Large contents (file writes) are logged by size only.
      body: summarize(body),
    });
    const handler = routes[key];
    if (!handler) {
      log({ time: now(), unknownRoute: key });
      throw new ApiError(501, 'UNKNOWN_ERROR', `statebox control server: unknown route ${key}`, {
        route: key,
      });
    }
    const result = await handler(body, request, response);
    if (result !== undefined) sendJson(response, 200, result);
  } catch (error) {
    if (response.headersSent) {
      response.destroy(error instanceof Error ? error : undefined);
      return;
    }
    const apiError =
      error instanceof ApiError
        ? error
        : new ApiError(500, 'INTERNAL_ERROR', error instanceof Error ? error.message : String(error), {});
    sendJson(response, apiError.httpStatus, errorBody(apiError, key));
  }
});

function summarize(body) {
  const out = {};
  for (const [name, value] of Object.entries(body)) {
    out[name] = typeof value === 'string' && value.length > 256 ? { length: value.length } : value;
  }
  return out;
}

server.keepAliveTimeout = 60_000;
server.listen(PORT, '0.0.0.0', () => {
  process.stdout.write(`statebox control server listening on ${PORT}\n`);
});

// PID 1 in the container: without a handler, SIGTERM is ignored and every stop waits for Docker's
// grace period before SIGKILL (Cloudflare's server also stops at once).
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    server.close();
    process.exit(0);
  });
}

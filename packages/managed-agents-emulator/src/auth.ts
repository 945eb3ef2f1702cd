import type { Emulator, EnvironmentRecord } from './emulator.js';
import { forbidden, unauthorized } from './errors.js';
import type { Ctx, Handler } from './http.js';
import type { SessionRecord } from './sessions.js';
import type { WorkRecord } from './work-queue.js';

/** Who is calling: the API key, an environment key, or the sessions token of one work item. */
export type Principal =
  | { kind: 'api' }
  | { kind: 'environment'; environmentId: string }
  | { kind: 'session'; sessionId: string; environmentId: string; workId: string };

export const API = ['api'] as const;
export const ANY = ['api', 'environment', 'session'] as const;
export const WORKER = ['environment', 'session'] as const;

/**
 * Route middleware: authenticate the request and let only `kinds` through (403 for another credential).
 * Runs after the route matched, so an unknown route is a 501 whatever the credential.
 */
export function allow(emulator: Emulator, kinds: ReadonlyArray<Principal['kind']>): Handler {
  return (c, next) => {
    const path = c.get('record').path;
    const principal = authenticate(emulator, c, path);
    c.get('record').principal = principal.kind;
    if (!kinds.includes(principal.kind)) {
      throw forbidden(`${describePrincipal(principal)} may not call ${c.req.method} ${path}`);
    }
    c.set('principal', principal);
    return next();
  };
}

function authenticate(emulator: Emulator, c: Ctx, pathname: string): Principal {
  const apiKey = c.req.header('x-api-key') ?? null;
  const authorization = c.req.header('authorization') ?? null;
  const bearer = authorization?.match(/^Bearer\s+(.+)$/i)?.[1]?.trim() ?? null;
  if (apiKey !== null && bearer !== null && pathname.startsWith('/v1/sessions/')) {
    // The real server rejects the dual-auth combination on per-session endpoints (SDK example, Cloudflare).
    throw unauthorized('send either x-api-key or Authorization: Bearer, not both');
  }
  if (apiKey !== null) {
    if (apiKey !== emulator.apiKey) throw unauthorized('invalid x-api-key');
    return { kind: 'api' };
  }
  if (bearer !== null) {
    // SDK 1.12.0 sends even an `apiKey` as `Authorization: Bearer <key>` (client.ts `apiKeyAuth`).
    if (bearer === emulator.apiKey) return { kind: 'api' };
    for (const environment of emulator.environments.values()) {
      if (environment.environmentKey === bearer)
        return { kind: 'environment', environmentId: environment.id };
    }
    const work = emulator.work.byToken(bearer);
    if (work) {
      return {
        kind: 'session',
        sessionId: work.sessionId,
        environmentId: work.environmentId,
        workId: work.id,
      };
    }
    throw unauthorized('invalid bearer token: not an environment key or sessions token of this emulator');
  }
  throw unauthorized('missing credentials: send x-api-key or Authorization: Bearer');
}

export function describePrincipal(principal: Principal): string {
  switch (principal.kind) {
    case 'api':
      return 'the API key';
    case 'environment':
      return `the environment key of ${principal.environmentId}`;
    case 'session':
      return `the sessions token of work item ${principal.workId}`;
  }
}

/** The environment a worker credential may touch. */
export function checkEnvironment(
  emulator: Emulator,
  principal: Principal,
  environmentId: string,
): EnvironmentRecord {
  const environment = emulator.environment(environmentId);
  if (principal.kind !== 'api' && principal.environmentId !== environmentId) {
    throw forbidden(`${describePrincipal(principal)} is not valid for environment ${environmentId}`);
  }
  return environment;
}

/** The session a credential may touch: a sessions token is scoped to its one session. */
export function checkSession(emulator: Emulator, principal: Principal, sessionId: string): SessionRecord {
  const session = emulator.session(sessionId);
  if (principal.kind === 'environment' && principal.environmentId !== session.environmentId) {
    throw forbidden(`the environment key is not valid for session ${sessionId}`);
  }
  if (principal.kind === 'session' && principal.sessionId !== sessionId) {
    throw forbidden(`the sessions token is scoped to session ${principal.sessionId}, not ${sessionId}`);
  }
  return session;
}

export function checkWork(
  emulator: Emulator,
  principal: Principal,
  environmentId: string,
  workId: string,
): WorkRecord {
  checkEnvironment(emulator, principal, environmentId);
  const work = emulator.work.get(environmentId, workId);
  if (principal.kind === 'session' && principal.workId !== workId && principal.sessionId !== work.sessionId) {
    throw forbidden(`the sessions token is not valid for work item ${workId}`);
  }
  return work;
}

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApiError, badRequest, forbidden, notFound, unauthorized } from './errors.js';
import { paginate, queryInt, queryList, readJson, sendError, sendJson } from './http.js';
import { newId, newKey, now } from './ids.js';
import { type MemoryStoreDefinition, MemoryStores } from './memory.js';
import { ScriptedAgent } from './scripted-agent.js';
import {
  closeStreams,
  describeSession,
  emit,
  newSessionRecord,
  type SessionEvent,
  type SessionRecord,
} from './sessions.js';
import { type SkillDefinition, SkillRegistry } from './skills.js';
import { contentText, type StepResult, type Transcript } from './transcript.js';
import { WorkQueue, type WorkRecord } from './work-queue.js';

export const MANAGED_AGENTS_BETA = 'managed-agents-2026-04-01';
export const AGENT_MEMORY_BETA = 'agent-memory-2026-07-22';

export interface EmulatorOptions {
  /** Port on 127.0.0.1; 0 (the default) picks a free one. */
  port?: number;
  /** The API key app-side calls must send as `x-api-key`; generated when omitted. */
  apiKey?: string;
  transcripts?: Transcript[];
  skills?: SkillDefinition[];
  /** Lease TTL of a work item after ack and after each heartbeat, in seconds. Default 90, as the SDK assumes. */
  leaseTtlSeconds?: number;
  /** Pause before each scripted event, so events arrive one at a time. Default 5 ms. */
  stepDelayMs?: number;
  /** Interval of `: heartbeat` comments on open event streams. Default 15 000 ms. */
  sseHeartbeatMs?: number;
}

type Principal =
  | { kind: 'api' }
  | { kind: 'environment'; environmentId: string }
  | { kind: 'session'; sessionId: string; environmentId: string; workId: string };

/** One handled request, as `emulator.requests` records it. */
export interface RequestRecord {
  method: string;
  path: string;
  status: number;
  principal: Principal['kind'] | 'none';
  /** The `anthropic-beta` header, or `null` when absent (the emulator is lenient and only records it). */
  beta: string | null;
  workerId: string | null;
}

interface EnvironmentRecord {
  id: string;
  name: string;
  description: string | null;
  config: Record<string, unknown>;
  metadata: Record<string, string>;
  createdAt: string;
  updatedAt: string;
  archivedAt: string | null;
  environmentKey: string;
}

interface AgentRecord {
  body: Record<string, unknown>;
}

interface Context {
  request: IncomingMessage;
  response: ServerResponse;
  params: string[];
  query: URLSearchParams;
  principal: Principal;
  body: () => Promise<Record<string, unknown>>;
}

/** A handler returns the JSON body (status 200), `null` for 204, or `HANDLED` after writing the response itself. */
const HANDLED = Symbol('handled');
type Handler = (context: Context) => Promise<unknown> | unknown;
interface Route {
  method: string;
  pattern: RegExp;
  /** Who may call: the API key, an environment key, a sessions token. */
  allow: ReadonlyArray<Principal['kind']>;
  handler: Handler;
}

const SEGMENT = '([^/]+)';

/** The report of a session's scripted turns and of the tool results posted to it. */
export interface SessionReport {
  sessionId: string;
  status: SessionRecord['status'];
  turns: Array<{
    transcript: string | null;
    message: string;
    finished: boolean;
    interrupted: boolean;
    error?: string;
    steps: StepResult[];
  }>;
  /** Every step of every turn, in order. */
  steps: StepResult[];
  /** Every tool step answered and every expectation held, and no turn failed to find a transcript. */
  passed: boolean;
  /** Result posts per tool_use_id (accepted or rejected): "each result posted exactly once" means all 1. */
  answers: Record<string, number>;
  /** Accepted results per tool_use_id. */
  acceptedAnswers: Record<string, number>;
  rejectedAnswers: Array<{ toolUseId: string; status: number; reason: string }>;
  /** Work items created for the session, oldest first. */
  workItems: Array<{ id: string; state: string; claims: number }>;
}

export class Emulator {
  readonly apiKey: string;
  readonly requests: RequestRecord[] = [];
  readonly agent: ScriptedAgent;
  readonly skills = new SkillRegistry();
  readonly memory = new MemoryStores();
  readonly work: WorkQueue;
  readonly environments = new Map<string, EnvironmentRecord>();
  readonly agents = new Map<string, AgentRecord>();
  readonly sessions = new Map<string, SessionRecord>();
  url = '';
  readonly #server: Server;
  readonly #routes: Route[];
  readonly #heartbeatTimer: NodeJS.Timeout;

  constructor(private readonly options: EmulatorOptions) {
    this.apiKey = options.apiKey ?? newKey('sk-ant-api03-emulator-');
    this.agent = new ScriptedAgent(options.stepDelayMs ?? 5);
    for (const transcript of options.transcripts ?? []) this.agent.add(transcript);
    for (const skill of options.skills ?? []) this.skills.add(skill);
    this.work = new WorkQueue(options.leaseTtlSeconds ?? 90, () => {});
    this.#routes = this.#buildRoutes();
    this.#server = createServer((request, response) => {
      void this.#handle(request, response);
    });
    this.#heartbeatTimer = setInterval(() => {
      for (const session of this.sessions.values()) {
        for (const stream of session.streams) stream.write(': heartbeat\n\n');
      }
    }, options.sseHeartbeatMs ?? 15_000);
    this.#heartbeatTimer.unref();
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(this.options.port ?? 0, '127.0.0.1', () => resolve());
    });
    const address = this.#server.address() as AddressInfo;
    this.url = `http://127.0.0.1:${address.port}`;
  }

  async close(): Promise<void> {
    clearInterval(this.#heartbeatTimer);
    this.work.close();
    for (const session of this.sessions.values()) {
      this.agent.interrupt(session);
      closeStreams(session, false);
    }
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  // ===== in-process operations =====

  createEnvironment(
    name: string,
    config: Record<string, unknown> = { type: 'self_hosted' },
  ): EnvironmentRecord {
    const stamp = now();
    const environment: EnvironmentRecord = {
      id: newId('env'),
      name,
      description: null,
      config,
      metadata: {},
      createdAt: stamp,
      updatedAt: stamp,
      archivedAt: null,
      environmentKey: newKey('sk-ant-oat01-emulator-'),
    };
    this.environments.set(environment.id, environment);
    return environment;
  }

  createAgent(params: Record<string, unknown>): Record<string, unknown> {
    if (typeof params.name !== 'string' || params.name === '')
      throw badRequest('name: a non-empty string is required');
    if (params.model === undefined) throw badRequest('model: required');
    const model = typeof params.model === 'string' ? { id: params.model } : params.model;
    const skills = Array.isArray(params.skills)
      ? params.skills.map((skill) => {
          const s = skill as Record<string, unknown>;
          if (typeof s.skill_id !== 'string') throw badRequest('skills[].skill_id: a string is required');
          return { type: s.type ?? 'custom', skill_id: s.skill_id, version: String(s.version ?? 'latest') };
        })
      : [];
    const stamp = now();
    const body: Record<string, unknown> = {
      type: 'agent',
      id: newId('agent'),
      name: params.name,
      description: params.description ?? null,
      system: params.system ?? null,
      model,
      tools: Array.isArray(params.tools) ? params.tools : [],
      skills,
      mcp_servers: Array.isArray(params.mcp_servers) ? params.mcp_servers : [],
      metadata: (params.metadata as Record<string, string>) ?? {},
      multiagent: null,
      execution_identity: { type: 'service_account' },
      version: 1,
      archived_at: null,
      created_at: stamp,
      updated_at: stamp,
    };
    this.agents.set(body.id as string, { body });
    return body;
  }

  createSession(params: Record<string, unknown>): SessionRecord {
    const agentRef = params.agent;
    const agentId = typeof agentRef === 'string' ? agentRef : (agentRef as { id?: unknown } | undefined)?.id;
    if (typeof agentId !== 'string') throw badRequest('agent: an agent id is required');
    const agent = this.agents.get(agentId);
    if (!agent) throw notFound(`agent ${agentId} not found`);
    if (typeof params.environment_id !== 'string') throw badRequest('environment_id: required');
    const environment = this.#environment(params.environment_id);
    const selfHosted = (environment.config as { type?: unknown }).type === 'self_hosted';
    const resources = Array.isArray(params.resources) ? (params.resources as Record<string, unknown>[]) : [];
    if (selfHosted && resources.some((resource) => resource.type !== 'memory_store')) {
      throw badRequest(
        `Environment ${environment.id} is a self-hosted environment. \`resources\` are not supported with self-hosted environments.`,
      );
    }
    if (resources.length > 8) throw badRequest('resources: a session can attach at most 8 memory stores');
    const described = resources.map((resource) => {
      if (resource.type !== 'memory_store') return resource;
      const store = this.memory.get(String(resource.memory_store_id));
      return {
        type: 'memory_store',
        memory_store_id: store.id,
        access: resource.access ?? 'read_write',
        name: store.name,
        description: store.description,
        instructions: resource.instructions ?? null,
        mount_path: `/mnt/memory/${slug(store.name) || store.id}`,
      };
    });
    const agentBody = agent.body;
    const snapshot = {
      type: 'agent',
      id: agentBody.id,
      name: agentBody.name,
      description: agentBody.description,
      system: agentBody.system,
      model: agentBody.model,
      tools: agentBody.tools,
      skills: agentBody.skills,
      mcp_servers: agentBody.mcp_servers,
      multiagent: null,
      execution_identity: agentBody.execution_identity,
      version: agentBody.version,
    };
    const session = newSessionRecord({
      agent: snapshot,
      environmentId: environment.id,
      title: typeof params.title === 'string' ? params.title : null,
      metadata: { ...((params.metadata as Record<string, string>) ?? {}) },
      resources: described,
    });
    this.sessions.set(session.id, session);
    if (selfHosted) this.work.enqueue(environment.id, session.id);
    if (Array.isArray(params.initial_events) && params.initial_events.length > 0) {
      this.sendEvents(session, params.initial_events as Record<string, unknown>[]);
    }
    return session;
  }

  /** Validate then apply a batch of user events, as `POST /v1/sessions/{id}/events` does. */
  sendEvents(session: SessionRecord, events: Record<string, unknown>[]): SessionEvent[] {
    if (session.status === 'terminated') throw badRequest(`session ${session.id} is terminated`);
    const pendingAnswers = new Set<string>();
    for (const [index, event] of events.entries()) {
      const where = `events[${index}]`;
      switch (event.type) {
        case 'user.message':
          if (!Array.isArray(event.content))
            throw badRequest(`${where}.content: an array of blocks is required`);
          break;
        case 'user.interrupt':
          break;
        case 'user.tool_confirmation':
          if (typeof event.tool_use_id !== 'string' || !session.toolCalls.has(event.tool_use_id)) {
            throw badRequest(
              `${where}.tool_use_id: no agent.tool_use ${String(event.tool_use_id)} in this session`,
            );
          }
          if (event.result !== 'allow' && event.result !== 'deny') {
            throw badRequest(`${where}.result: must be allow or deny`);
          }
          break;
        case 'user.tool_result':
        case 'user.custom_tool_result': {
          const custom = event.type === 'user.custom_tool_result';
          const key = custom ? 'custom_tool_use_id' : 'tool_use_id';
          const id = event[key];
          if (typeof id !== 'string') throw badRequest(`${where}.${key}: required`);
          session.answerAttempts.set(id, (session.answerAttempts.get(id) ?? 0) + 1);
          const call = session.toolCalls.get(id);
          const reject = (reason: string) => {
            session.rejectedAnswers.push({ toolUseId: id, status: 400, reason });
            return badRequest(`${where}.${key}: ${reason}`);
          };
          if (!call)
            throw reject(`no ${custom ? 'agent.custom_tool_use' : 'agent.tool_use'} ${id} in this session`);
          if (call.custom !== custom) {
            throw reject(
              custom
                ? `${id} is an agent.tool_use; answer it with user.tool_result`
                : `${id} is an agent.custom_tool_use; answer it with user.custom_tool_result`,
            );
          }
          if (call.answered || pendingAnswers.has(id)) throw reject(`${id} has already been answered`);
          if (event.content !== undefined && !Array.isArray(event.content)) {
            throw badRequest(`${where}.content: must be an array of blocks`);
          }
          pendingAnswers.add(id);
          break;
        }
        default:
          throw badRequest(`${where}.type: ${String(event.type)} is not supported by the emulator`);
      }
    }
    const echoed: SessionEvent[] = [];
    for (const event of events) {
      const stored = emit(session, { ...event, type: String(event.type) });
      echoed.push(stored);
      this.#applyEvent(session, stored);
    }
    return echoed;
  }

  archiveSession(session: SessionRecord): void {
    if (session.status === 'terminated') return;
    session.archivedAt = now();
    session.status = 'terminated';
    this.agent.interrupt(session);
    emit(session, { type: 'session.status_terminated' });
    closeStreams(session, false);
  }

  report(sessionId: string): SessionReport {
    const session = this.#session(sessionId);
    const steps = session.turns.flatMap((turn) => turn.steps);
    const toCounts = (map: Map<string, number>) => Object.fromEntries(map);
    const workItems = [...this.work.items.values()]
      .filter((work) => work.sessionId === sessionId)
      .map((work) => ({ id: work.id, state: work.state, claims: work.claims }));
    return {
      sessionId,
      status: session.status,
      turns: session.turns.map((turn) => ({ ...turn })),
      steps,
      passed:
        session.turns.length > 0 &&
        session.turns.every((turn) => turn.transcript !== null && turn.error === undefined) &&
        steps.every((step) => step.pass),
      answers: toCounts(session.answerAttempts),
      acceptedAnswers: toCounts(session.answersAccepted),
      rejectedAnswers: [...session.rejectedAnswers],
      workItems,
    };
  }

  /** Resolve once the session has no turn running or queued and at least `turns` turns have ended. */
  waitForTurns(sessionId: string, turns = 1, timeoutMs = 30_000): Promise<SessionReport> {
    const session = this.#session(sessionId);
    const done = () =>
      !session.turnRunning &&
      session.inbox.length === 0 &&
      session.turns.filter((t) => t.finished || t.interrupted).length >= turns;
    if (done()) return Promise.resolve(this.report(sessionId));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        session.turnWaiters.delete(check);
        reject(new Error(`session ${sessionId}: ${turns} turn(s) did not finish within ${timeoutMs} ms`));
      }, timeoutMs);
      const check = () => {
        if (!done()) return;
        clearTimeout(timer);
        session.turnWaiters.delete(check);
        resolve(this.report(sessionId));
      };
      session.turnWaiters.add(check);
    });
  }

  session(sessionId: string): SessionRecord {
    return this.#session(sessionId);
  }

  workItem(workId: string): WorkRecord {
    const work = this.work.items.get(workId);
    if (!work) throw notFound(`work item ${workId} not found`);
    return work;
  }

  createMemoryStore(definition: MemoryStoreDefinition): string {
    return this.memory.create(definition).id;
  }

  // ===== HTTP =====

  async #handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const requestId = newId('req');
    const url = new URL(request.url ?? '/', 'http://127.0.0.1');
    const record: RequestRecord = {
      method: request.method ?? 'GET',
      path: url.pathname,
      status: 0,
      principal: 'none',
      beta: headerValue(request, 'anthropic-beta'),
      workerId: headerValue(request, 'anthropic-worker-id'),
    };
    if (this.requests.length >= 10_000) this.requests.shift();
    this.requests.push(record);
    response.on('finish', () => {
      record.status = response.statusCode;
    });
    response.on('close', () => {
      record.status ||= response.statusCode;
    });
    try {
      let matched: { route: Route; params: string[] } | undefined;
      let pathKnown = false;
      for (const route of this.#routes) {
        const match = route.pattern.exec(url.pathname);
        if (!match) continue;
        pathKnown = true;
        if (route.method !== request.method) continue;
        matched = { route, params: match.slice(1).map(decodeURIComponent) };
        break;
      }
      if (!matched) {
        throw pathKnown
          ? new ApiError(405, 'invalid_request_error', `${request.method} is not allowed on ${url.pathname}`)
          : notFound(`no route ${request.method} ${url.pathname} in the emulator`);
      }
      const principal = this.#authenticate(request, url.pathname);
      record.principal = principal.kind;
      if (!matched.route.allow.includes(principal.kind)) {
        throw forbidden(`${describePrincipal(principal)} may not call ${request.method} ${url.pathname}`);
      }
      let bodyPromise: Promise<Record<string, unknown>> | undefined;
      const result = await matched.route.handler({
        request,
        response,
        params: matched.params,
        query: url.searchParams,
        principal,
        body: () => {
          bodyPromise ??= readJson(request);
          return bodyPromise;
        },
      });
      if (result === HANDLED) return;
      if (result === null) {
        response.writeHead(204, { 'request-id': requestId });
        response.end();
        return;
      }
      sendJson(response, 200, result, { 'request-id': requestId });
    } catch (error) {
      if (response.headersSent) {
        response.destroy();
        return;
      }
      const apiError =
        error instanceof ApiError
          ? error
          : new ApiError(
              500,
              'api_error',
              `emulator bug: ${error instanceof Error ? error.message : String(error)}`,
            );
      sendError(response, apiError, requestId);
    }
  }

  #authenticate(request: IncomingMessage, pathname: string): Principal {
    const apiKey = headerValue(request, 'x-api-key');
    const authorization = headerValue(request, 'authorization');
    const bearer = authorization?.match(/^Bearer\s+(.+)$/i)?.[1]?.trim() ?? null;
    if (apiKey !== null && bearer !== null && pathname.startsWith('/v1/sessions/')) {
      // The real server rejects the dual-auth combination on per-session endpoints (SDK example, Cloudflare).
      throw unauthorized('send either x-api-key or Authorization: Bearer, not both');
    }
    if (apiKey !== null) {
      if (apiKey !== this.apiKey) throw unauthorized('invalid x-api-key');
      return { kind: 'api' };
    }
    if (bearer !== null) {
      // SDK 1.12.0 sends even an `apiKey` as `Authorization: Bearer <key>` (client.ts `apiKeyAuth`).
      if (bearer === this.apiKey) return { kind: 'api' };
      for (const environment of this.environments.values()) {
        if (environment.environmentKey === bearer)
          return { kind: 'environment', environmentId: environment.id };
      }
      const work = this.work.byToken(bearer);
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

  #environment(environmentId: string): EnvironmentRecord {
    const environment = this.environments.get(environmentId);
    if (!environment) throw notFound(`environment ${environmentId} not found`);
    return environment;
  }

  #session(sessionId: string): SessionRecord {
    const session = this.sessions.get(sessionId);
    if (!session || session.deleted) throw notFound(`session ${sessionId} not found`);
    return session;
  }

  /** The environment a worker credential may touch. */
  #checkEnvironment(principal: Principal, environmentId: string): EnvironmentRecord {
    const environment = this.#environment(environmentId);
    if (principal.kind !== 'api' && principal.environmentId !== environmentId) {
      throw forbidden(`${describePrincipal(principal)} is not valid for environment ${environmentId}`);
    }
    return environment;
  }

  /** The session a credential may touch: a sessions token is scoped to its one session. */
  #checkSession(principal: Principal, sessionId: string): SessionRecord {
    const session = this.#session(sessionId);
    if (principal.kind === 'environment' && principal.environmentId !== session.environmentId) {
      throw forbidden(`the environment key is not valid for session ${sessionId}`);
    }
    if (principal.kind === 'session' && principal.sessionId !== sessionId) {
      throw forbidden(`the sessions token is scoped to session ${principal.sessionId}, not ${sessionId}`);
    }
    return session;
  }

  #checkWork(principal: Principal, environmentId: string, workId: string): WorkRecord {
    this.#checkEnvironment(principal, environmentId);
    const work = this.work.get(environmentId, workId);
    if (
      principal.kind === 'session' &&
      principal.workId !== workId &&
      principal.sessionId !== work.sessionId
    ) {
      throw forbidden(`the sessions token is not valid for work item ${workId}`);
    }
    return work;
  }

  #applyEvent(session: SessionRecord, event: SessionEvent): void {
    switch (event.type) {
      case 'user.message': {
        const idle = session.status === 'idle' && !session.turnRunning;
        if (idle && this.#selfHosted(session) && !this.work.liveFor(session.id)) {
          this.work.enqueue(session.environmentId, session.id);
        }
        this.agent.deliver(session, contentText(event.content));
        break;
      }
      case 'user.interrupt': {
        this.agent.interrupt(session);
        if (this.#selfHosted(session) && !this.work.liveFor(session.id)) {
          this.work.enqueue(session.environmentId, session.id);
        }
        break;
      }
      case 'user.tool_result':
      case 'user.custom_tool_result': {
        const id = String(event.type === 'user.tool_result' ? event.tool_use_id : event.custom_tool_use_id);
        const call = session.toolCalls.get(id)!;
        call.answered = true;
        session.answersAccepted.set(id, (session.answersAccepted.get(id) ?? 0) + 1);
        if (!call.cancelled) {
          call.resolve?.({
            content: Array.isArray(event.content) ? event.content : [],
            isError: event.is_error === true,
          });
        }
        break;
      }
      default:
        break;
    }
  }

  #selfHosted(session: SessionRecord): boolean {
    const environment = this.environments.get(session.environmentId);
    return (environment?.config as { type?: unknown } | undefined)?.type === 'self_hosted';
  }

  #describeEnvironment(environment: EnvironmentRecord, withKey: boolean): Record<string, unknown> {
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
    // Emulator-only: the real API shows the environment key only in the Console.
    if (withKey) body.emulator_environment_key = environment.environmentKey;
    return body;
  }

  #buildRoutes(): Route[] {
    const API = ['api'] as const;
    const ANY = ['api', 'environment', 'session'] as const;
    const WORKER = ['environment', 'session'] as const;
    const route = (
      method: string,
      path: string,
      allow: ReadonlyArray<Principal['kind']>,
      handler: Handler,
    ): Route => ({
      method,
      pattern: new RegExp(`^${path.replaceAll('{}', SEGMENT)}$`),
      allow,
      handler,
    });
    const env = (c: Context) => c.params[0]!;

    return [
      // ----- agents -----
      route('POST', '/v1/agents', API, async (c) => this.createAgent(await c.body())),
      route('GET', '/v1/agents', API, (c) =>
        paginate(
          [...this.agents.values()].map((a) => a.body),
          c.query,
          20,
          100,
        ),
      ),
      route('GET', '/v1/agents/{}', API, (c) => {
        const agent = this.agents.get(c.params[0]!);
        if (!agent) throw notFound(`agent ${c.params[0]} not found`);
        return agent.body;
      }),
      route('POST', '/v1/agents/{}/archive', API, (c) => {
        const agent = this.agents.get(c.params[0]!);
        if (!agent) throw notFound(`agent ${c.params[0]} not found`);
        agent.body.archived_at ??= now();
        return agent.body;
      }),

      // ----- environments -----
      route('POST', '/v1/environments', API, async (c) => {
        const body = await c.body();
        if (typeof body.name !== 'string' || body.name === '')
          throw badRequest('name: a non-empty string is required');
        const config = (body.config as Record<string, unknown> | null | undefined) ?? {
          type: 'cloud',
          networking: { type: 'unrestricted' },
          packages: {},
        };
        const environment = this.createEnvironment(body.name, config);
        environment.description = typeof body.description === 'string' ? body.description : null;
        environment.metadata = (body.metadata as Record<string, string>) ?? {};
        c.response.setHeader('x-emulator-environment-key', environment.environmentKey);
        return this.#describeEnvironment(environment, true);
      }),
      route('GET', '/v1/environments', API, (c) => {
        const includeArchived = c.query.get('include_archived') === 'true';
        const list = [...this.environments.values()].filter((e) => includeArchived || e.archivedAt === null);
        return paginate(
          list.map((e) => this.#describeEnvironment(e, false)),
          c.query,
          20,
          100,
        );
      }),
      route('GET', '/v1/environments/{}', ANY, (c) => {
        const environment = this.#checkEnvironment(c.principal, env(c));
        if (c.principal.kind === 'api')
          c.response.setHeader('x-emulator-environment-key', environment.environmentKey);
        return this.#describeEnvironment(environment, c.principal.kind === 'api');
      }),
      route('POST', '/v1/environments/{}/archive', API, (c) => {
        const environment = this.#environment(env(c));
        environment.archivedAt ??= now();
        environment.updatedAt = now();
        return this.#describeEnvironment(environment, false);
      }),

      // ----- work queue -----
      route('GET', '/v1/environments/{}/work/poll', ['environment'], async (c) => {
        this.#checkEnvironment(c.principal, env(c));
        const blockMs = queryInt(c.query, 'block_ms', 1, 999);
        const reclaim = queryInt(c.query, 'reclaim_older_than_ms', 0, Number.MAX_SAFE_INTEGER) ?? 5_000;
        const workerId = headerValue(c.request, 'anthropic-worker-id');
        const work = await this.work.poll(env(c), { blockMs, reclaimOlderThanMs: reclaim, workerId });
        return work ? this.work.describe(work, true, this.url) : null;
      }),
      route('GET', '/v1/environments/{}/work/stats', ['api', 'environment'], (c) => {
        this.#checkEnvironment(c.principal, env(c));
        return this.work.stats(env(c));
      }),
      route('GET', '/v1/environments/{}/work', ['environment'], (c) => {
        this.#checkEnvironment(c.principal, env(c));
        const items = this.work.forEnvironment(env(c)).map((w) => this.work.describe(w, false, this.url));
        const { data, next_page } = paginate(items, c.query, 20, 100);
        return { data, next_page };
      }),
      route('GET', '/v1/environments/{}/work/{}', API, (c) => {
        const work = this.#checkWork(c.principal, env(c), c.params[1]!);
        return this.work.describe(work, false, this.url);
      }),
      route('POST', '/v1/environments/{}/work/{}', API, async (c) => {
        const work = this.#checkWork(c.principal, env(c), c.params[1]!);
        const patch = (await c.body()).metadata as Record<string, string | null> | undefined;
        for (const [key, value] of Object.entries(patch ?? {})) {
          if (value === null) delete work.metadata[key];
          else work.metadata[key] = String(value);
        }
        return this.work.describe(work, false, this.url);
      }),
      route('POST', '/v1/environments/{}/work/{}/ack', ['environment'], (c) => {
        const work = this.#checkWork(c.principal, env(c), c.params[1]!);
        return this.work.describe(this.work.ack(work), false, this.url);
      }),
      route('POST', '/v1/environments/{}/work/{}/heartbeat', WORKER, (c) => {
        const work = this.#checkWork(c.principal, env(c), c.params[1]!);
        const ttl = queryInt(c.query, 'desired_ttl_seconds', 1, 86_400);
        return this.work.heartbeat(work, c.query.get('expected_last_heartbeat'), ttl);
      }),
      route('POST', '/v1/environments/{}/work/{}/stop', ANY, async (c) => {
        const work = this.#checkWork(c.principal, env(c), c.params[1]!);
        const body = await c.body();
        return this.work.describe(this.work.stop(work, body.force === true), false, this.url);
      }),

      // ----- sessions -----
      route('POST', '/v1/sessions', API, async (c) => describeSession(this.createSession(await c.body()))),
      route('GET', '/v1/sessions', API, (c) => {
        const includeArchived = c.query.get('include_archived') === 'true';
        const list = [...this.sessions.values()]
          .filter((s) => !s.deleted && (includeArchived || s.archivedAt === null))
          .sort((a, b) => b.createdAt.localeCompare(a.createdAt));
        return paginate(list.map(describeSession), c.query, 20, 100);
      }),
      route('GET', '/v1/sessions/{}', ANY, (c) =>
        describeSession(this.#checkSession(c.principal, c.params[0]!)),
      ),
      route('POST', '/v1/sessions/{}', API, async (c) => {
        const session = this.#checkSession(c.principal, c.params[0]!);
        const body = await c.body();
        if (typeof body.title === 'string') session.title = body.title;
        const patch = body.metadata as Record<string, string | null> | undefined;
        for (const [key, value] of Object.entries(patch ?? {})) {
          if (value === null) delete session.metadata[key];
          else session.metadata[key] = String(value);
        }
        session.updatedAt = now();
        return describeSession(session);
      }),
      route('POST', '/v1/sessions/{}/archive', API, (c) => {
        const session = this.#checkSession(c.principal, c.params[0]!);
        this.archiveSession(session);
        return describeSession(session);
      }),
      route('DELETE', '/v1/sessions/{}', API, (c) => {
        const session = this.#checkSession(c.principal, c.params[0]!);
        if (session.status === 'running') {
          throw badRequest(`session ${session.id} is running: send user.interrupt before deleting it`);
        }
        this.agent.interrupt(session);
        emit(session, { type: 'session.deleted' });
        closeStreams(session, false);
        session.deleted = true;
        return { type: 'session_deleted', id: session.id };
      }),

      // ----- events -----
      route('GET', '/v1/sessions/{}/events', ANY, (c) => {
        const session = this.#checkSession(c.principal, c.params[0]!);
        const types = queryList(c.query, 'types');
        const order = c.query.get('order') ?? 'asc';
        if (order !== 'asc' && order !== 'desc') throw badRequest('order must be asc or desc');
        let events = session.events.filter((e) => types.length === 0 || types.includes(e.type));
        if (order === 'desc') events = [...events].reverse();
        const { data, next_page } = paginate(events, c.query, 20, 1000);
        return { data, next_page };
      }),
      route('GET', '/v1/sessions/{}/events/stream', ANY, (c) => {
        const session = this.#checkSession(c.principal, c.params[0]!);
        c.response.writeHead(200, {
          'content-type': 'text/event-stream',
          'cache-control': 'no-cache',
          connection: 'keep-alive',
        });
        c.response.write(': stream opened\n\n');
        if (session.status === 'terminated') {
          c.response.end();
          return HANDLED;
        }
        session.streams.add(c.response);
        c.response.on('close', () => session.streams.delete(c.response));
        return HANDLED;
      }),
      route('POST', '/v1/sessions/{}/events', ANY, async (c) => {
        const session = this.#checkSession(c.principal, c.params[0]!);
        const body = await c.body();
        if (session.sendFaults.remaining > 0) {
          session.sendFaults.remaining -= 1;
          const status = session.sendFaults.status;
          throw new ApiError(
            status,
            status === 529 ? 'overloaded_error' : 'api_error',
            `injected fault: send failed with ${status}`,
          );
        }
        if (!Array.isArray(body.events) || body.events.length === 0) {
          throw badRequest('events: a non-empty array is required');
        }
        return { data: this.sendEvents(session, body.events as Record<string, unknown>[]) };
      }),

      // ----- skills -----
      route('GET', '/v1/skills/{}/versions/{}', ANY, (c) =>
        this.skills.describe(this.skills.resolve(c.params[0]!, c.params[1]!)),
      ),
      route('GET', '/v1/skills/{}/versions/{}/content', ANY, (c) => {
        const record = this.skills.resolve(c.params[0]!, c.params[1]!);
        const archive = this.skills.archive(record);
        c.response.writeHead(200, {
          'content-type': 'application/x-tar',
          'content-length': String(archive.length),
          'content-disposition': `attachment; filename="${record.definition.name}.tar"`,
        });
        c.response.end(archive);
        return HANDLED;
      }),

      // ----- memory stores -----
      route('POST', '/v1/memory_stores', API, async (c) => {
        const body = await c.body();
        if (typeof body.name !== 'string' || body.name === '')
          throw badRequest('name: a non-empty string is required');
        const description = typeof body.description === 'string' ? body.description : undefined;
        return this.memory.describeStore(this.memory.create({ name: body.name, description }));
      }),
      route('GET', '/v1/memory_stores/{}', ['api', 'session'], (c) =>
        this.memory.describeStore(this.#memoryStore(c)),
      ),
      route('GET', '/v1/memory_stores/{}/memories', ['api', 'session'], (c) => {
        const store = this.#memoryStore(c);
        const view = c.query.get('view') ?? 'basic';
        const list = this.memory.list(store, c.query.get('path_prefix'));
        const { data, next_page } = paginate(
          list.map((m) => this.memory.describe(store, m, view)),
          c.query,
          20,
          1000,
        );
        return { data, next_page };
      }),
      route('POST', '/v1/memory_stores/{}/memories', ['api', 'session'], async (c) => {
        const store = this.#memoryStore(c);
        const body = await c.body();
        const memory = this.memory.createMemory(store, body.path as string, body.content as string);
        return this.memory.describe(store, memory, c.query.get('view') ?? 'full');
      }),
      route('GET', '/v1/memory_stores/{}/memories/{}', ['api', 'session'], (c) => {
        const store = this.#memoryStore(c);
        return this.memory.describe(
          store,
          this.memory.findMemory(store, c.params[1]!),
          c.query.get('view') ?? 'full',
        );
      }),
      route('POST', '/v1/memory_stores/{}/memories/{}', ['api', 'session'], async (c) => {
        const store = this.#memoryStore(c);
        const memory = this.memory.updateMemory(store, c.params[1]!, await c.body());
        return this.memory.describe(store, memory, c.query.get('view') ?? 'full');
      }),
      route('DELETE', '/v1/memory_stores/{}/memories/{}', ['api', 'session'], (c) => {
        const store = this.#memoryStore(c);
        this.memory.deleteMemory(store, c.params[1]!, c.query.get('expected_content_sha256'));
        return { type: 'memory_deleted', id: c.params[1]! };
      }),
    ];
  }

  /** Memory endpoints take the API key or a sessions token whose session attaches the store. */
  #memoryStore(c: Context) {
    const store = this.memory.get(c.params[0]!);
    if (c.principal.kind === 'session') {
      const session = this.#session(c.principal.sessionId);
      const attached = session.resources.some(
        (resource) => resource.type === 'memory_store' && resource.memory_store_id === store.id,
      );
      if (!attached) throw forbidden(`memory store ${store.id} is not attached to session ${session.id}`);
    }
    return store;
  }
}

function headerValue(request: IncomingMessage, name: string): string | null {
  const value = request.headers[name];
  if (value === undefined) return null;
  return Array.isArray(value) ? value.join(',') : value;
}

function describePrincipal(principal: Principal): string {
  switch (principal.kind) {
    case 'api':
      return 'the API key';
    case 'environment':
      return `the environment key of ${principal.environmentId}`;
    case 'session':
      return `the sessions token of work item ${principal.workId}`;
  }
}

function slug(name: string): string {
  return name
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
}

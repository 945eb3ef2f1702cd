import { createEmulatorServer, type EmulatorServer } from '@statebox/emulator-kit';
import { badRequest, errorResponse, notFound } from './errors.js';
import type { RequestFields, RouteVariables } from './http.js';
import { newId, newKey, now } from './ids.js';
import { type MemoryStoreDefinition, MemoryStores } from './memory.js';
import { reportSession, type SessionReport, waitForTurns } from './report.js';
import { registerRoutes } from './routes/index.js';
import { ScriptedAgent } from './scripted-agent.js';
import { closeStreams, emit, newSessionRecord, type SessionEvent, type SessionRecord } from './sessions.js';
import { type SkillDefinition, SkillRegistry } from './skills.js';
import { contentText, type Transcript } from './transcript.js';
import { validateUserEvents } from './user-events.js';
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

export interface EnvironmentRecord {
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

export interface AgentRecord {
  body: Record<string, unknown>;
}

/**
 * The emulator's state (agents, environments, sessions, the work queue, skills, memory stores) and the
 * operations on it, shared by the HTTP routes (`routes/`, one file per resource) and the in-process API.
 */
export class Emulator {
  readonly apiKey: string;
  readonly agent: ScriptedAgent;
  readonly skills = new SkillRegistry();
  readonly memory = new MemoryStores();
  readonly work: WorkQueue;
  readonly environments = new Map<string, EnvironmentRecord>();
  readonly agents = new Map<string, AgentRecord>();
  readonly sessions = new Map<string, SessionRecord>();
  readonly sseHeartbeatMs: number;
  readonly server: EmulatorServer<RouteVariables, RequestFields>;
  url = '';

  constructor(private readonly options: EmulatorOptions) {
    this.apiKey = options.apiKey ?? newKey('sk-ant-api03-emulator-');
    this.agent = new ScriptedAgent(options.stepDelayMs ?? 5);
    for (const transcript of options.transcripts ?? []) this.agent.add(transcript);
    for (const skill of options.skills ?? []) this.skills.add(skill);
    this.work = new WorkQueue(options.leaseTtlSeconds ?? 90, () => {});
    this.sseHeartbeatMs = options.sseHeartbeatMs ?? 15_000;
    this.server = createEmulatorServer<RouteVariables, RequestFields>({
      name: 'managed-agents',
      errorResponse,
      requestId: () => newId('req'),
      describeRequest: (c) => ({
        principal: 'none',
        beta: c.req.header('anthropic-beta') ?? null,
        workerId: c.req.header('anthropic-worker-id') ?? null,
      }),
    });
    registerRoutes(this.server, this);
  }

  get requests() {
    return this.server.requests.entries;
  }

  async listen(): Promise<void> {
    this.url = await this.server.listen({ port: this.options.port ?? 0 });
  }

  async close(): Promise<void> {
    this.work.close();
    for (const session of this.sessions.values()) {
      this.agent.interrupt(session);
      closeStreams(session, false);
    }
    await this.server.close();
  }

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
    const environment = this.environment(params.environment_id);
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
    validateUserEvents(session, events);
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

  deleteSession(session: SessionRecord): void {
    if (session.status === 'running') {
      throw badRequest(`session ${session.id} is running: send user.interrupt before deleting it`);
    }
    this.agent.interrupt(session);
    emit(session, { type: 'session.deleted' });
    closeStreams(session, false);
    session.deleted = true;
  }

  report(sessionId: string): SessionReport {
    return reportSession(this.session(sessionId), this.work);
  }

  /** Resolve once the session has no turn running or queued and at least `turns` turns have ended. */
  waitForTurns(sessionId: string, turns = 1, timeoutMs = 30_000): Promise<SessionReport> {
    return waitForTurns(this.session(sessionId), turns, timeoutMs, () => this.report(sessionId));
  }

  environment(environmentId: string): EnvironmentRecord {
    const environment = this.environments.get(environmentId);
    if (!environment) throw notFound(`environment ${environmentId} not found`);
    return environment;
  }

  agentRecord(agentId: string): AgentRecord {
    const agent = this.agents.get(agentId);
    if (!agent) throw notFound(`agent ${agentId} not found`);
    return agent;
  }

  session(sessionId: string): SessionRecord {
    const session = this.sessions.get(sessionId);
    if (!session || session.deleted) throw notFound(`session ${sessionId} not found`);
    return session;
  }

  workItem(workId: string): WorkRecord {
    const work = this.work.items.get(workId);
    if (!work) throw notFound(`work item ${workId} not found`);
    return work;
  }

  createMemoryStore(definition: MemoryStoreDefinition): string {
    return this.memory.create(definition).id;
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
}

function slug(name: string): string {
  return name
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
}

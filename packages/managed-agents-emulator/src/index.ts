import type { FaultHandle, FaultRule, RequestRecord as KitRequestRecord } from '@statebox/emulator-kit';
import { Emulator, type EmulatorOptions } from './emulator.js';
import type { RequestFields } from './http.js';
import { newId } from './ids.js';
import type { MemoryStoreDefinition } from './memory.js';
import type { SessionReport } from './report.js';
import { closeStreams, emit } from './sessions.js';
import type { SkillDefinition } from './skills.js';
import type { Transcript } from './transcript.js';

export type { FaultHandle, FaultRule } from '@statebox/emulator-kit';
export type { EmulatorOptions } from './emulator.js';
export { AGENT_MEMORY_BETA, MANAGED_AGENTS_BETA } from './emulator.js';
export type { SessionReport } from './report.js';

/**
 * One handled request, as `emulator.requests` records it: method, path, status, the credential kind, the
 * `anthropic-beta` and `Anthropic-Worker-ID` headers, and the kit's `requestId`, `route`, `fault`.
 */
export type RequestRecord = KitRequestRecord & RequestFields;
export type { MemoryStoreDefinition } from './memory.js';
export { TRANSCRIPT_METADATA_KEY } from './scripted-agent.js';
export type { SkillDefinition } from './skills.js';
export type {
  MessageStep,
  ParallelToolUseStep,
  StepExpectation,
  StepResult,
  ThinkingStep,
  ToolUseStep,
  Transcript,
  TranscriptStep,
  TurnContext,
} from './transcript.js';
export { parseTranscript } from './transcript.js';
export { loadTranscripts } from './transcript-files.js';

/** Fault injection, for tests of the worker's recovery paths. */
export interface EmulatorFaults {
  /** Drop every open event stream of the session (sockets destroyed, as a network failure). Returns how many. */
  dropStreams(sessionId: string, options?: { graceful?: boolean }): number;
  /**
   * Any fault on any request (the kit's rules): delay, a 5xx in the API's error shape, or a dropped
   * connection, for the next `times` requests matching `method` and `path`. Acts after authentication.
   */
  http(rule: FaultRule): FaultHandle;
  /** Another worker "takes" the lease: the holder's next heartbeat fails with 412 heartbeat_precondition_failed. */
  stealLease(workId: string): void;
  /** The next `count` `POST /v1/sessions/{id}/events` calls fail with `status` (500 or 529) before any processing. */
  failSends(sessionId: string, count: number, status?: 500 | 529): void;
  /** Stop a work item as an operator would: `stopping` (seen on the next heartbeat), or `stopped` with `force`. */
  stopWork(workId: string, options?: { force?: boolean }): void;
  /**
   * Queue a second work item for a session that may already have a live one (a duplicate delivery, which
   * reference orchestrators guard against). Returns the new item's id.
   */
  duplicateWork(sessionId: string): string;
  /** Queue a healthcheck item (`data: {type: 'healthcheck', id}`), which names no session. Returns its id. */
  healthcheck(environmentId: string): string;
  /**
   * Emit `session.error` on the session (a model-overloaded error the agent loop is retrying), as the
   * real loop reports a failure without ending the turn.
   */
  sessionError(sessionId: string, message?: string): void;
  /** The item's lease lapses now: the next poll re-delivers it (same id); its old holder's next beat gets 412. */
  expireLease(workId: string): void;
}

export interface StateboxEmulator {
  /** Base URL, `http://127.0.0.1:<port>`: pass it as the SDK's `baseURL`. */
  readonly url: string;
  /** The API key app-side calls must send (`new Anthropic({ baseURL: url, apiKey })`). */
  readonly apiKey: string;
  /** Create a `self_hosted` environment; its key authenticates the worker (`authToken`). */
  createEnvironment(name: string): { id: string; environmentKey: string };
  /** Create an agent (as `POST /v1/agents` would) and return its id. */
  createAgent(params?: {
    name?: string;
    model?: string;
    system?: string;
    tools?: unknown[];
    skills?: Array<{ type?: 'anthropic' | 'custom'; skill_id: string; version?: string }>;
  }): string;
  /**
   * Create a session in-process (as `POST /v1/sessions` would, so it queues a work item) and optionally send it
   * a first user message. Creates a default agent when `agentId` is omitted.
   */
  createSession(params: {
    environmentId: string;
    agentId?: string;
    title?: string;
    metadata?: Record<string, string>;
    resources?: Array<Record<string, unknown>>;
    message?: string;
  }): string;
  /** Send a user message in-process (queues work when the session is idle with no live work item). */
  sendMessage(sessionId: string, text: string): void;
  addTranscript(transcript: Transcript): void;
  addSkill(skill: SkillDefinition): { skillId: string; version: string };
  /** Register a memory store; returns its `memstore_...` id to attach as a session resource. */
  createMemoryStore(definition: MemoryStoreDefinition): string;
  /** Current content of every memory of a store, by path. */
  memories(storeId: string): Record<string, string>;
  report(sessionId: string): SessionReport;
  /** Resolve with the report once `turns` turns have ended and nothing is queued; rejects after `timeoutMs`. */
  waitForTurns(sessionId: string, turns?: number, timeoutMs?: number): Promise<SessionReport>;
  /** The session's work items, oldest first, with their lease state. */
  workItems(sessionId: string): Array<{ id: string; state: string; claims: number }>;
  /** Every request handled so far (method, path, status, credential kind, beta header, worker id). */
  readonly requests: ReadonlyArray<RequestRecord>;
  /**
   * Requests for endpoints the emulator does not implement, each answered 501 (`api_error`). A test can
   * assert this stays empty, so an SDK upgrade that calls something new is noticed.
   */
  readonly unhandled: ReadonlyArray<RequestRecord>;
  readonly faults: EmulatorFaults;
  close(): Promise<void>;
}

/** Start the emulator on 127.0.0.1. */
export async function startEmulator(options: EmulatorOptions = {}): Promise<StateboxEmulator> {
  const emulator = new Emulator(options);
  await emulator.listen();
  let defaultAgentId: string | undefined;
  const sendFaults = new Map<string, FaultHandle>();
  const api: StateboxEmulator = {
    url: emulator.url,
    apiKey: emulator.apiKey,
    createEnvironment(name) {
      const environment = emulator.createEnvironment(name);
      return { id: environment.id, environmentKey: environment.environmentKey };
    },
    createAgent(params = {}) {
      const agent = emulator.createAgent({
        name: params.name ?? 'emulator-agent',
        model: params.model ?? 'claude-sonnet-4-6',
        system: params.system,
        tools: params.tools ?? [{ type: 'agent_toolset_20260401' }],
        skills: params.skills,
      });
      return agent.id as string;
    },
    createSession(params) {
      defaultAgentId ??= params.agentId === undefined ? api.createAgent() : undefined;
      const agentId = params.agentId ?? defaultAgentId!;
      const session = emulator.createSession({
        agent: agentId,
        environment_id: params.environmentId,
        title: params.title,
        metadata: params.metadata,
        resources: params.resources,
      });
      if (params.message !== undefined) api.sendMessage(session.id, params.message);
      return session.id;
    },
    sendMessage(sessionId, text) {
      emulator.sendEvents(emulator.session(sessionId), [
        { type: 'user.message', content: [{ type: 'text', text }] },
      ]);
    },
    addTranscript: (transcript) => emulator.agent.add(transcript),
    addSkill: (skill) => emulator.skills.add(skill),
    createMemoryStore: (definition) => emulator.createMemoryStore(definition),
    memories(storeId) {
      const store = emulator.memory.get(storeId);
      return Object.fromEntries([...store.memories.values()].map((m) => [m.path, m.content]));
    },
    report: (sessionId) => emulator.report(sessionId),
    waitForTurns: (sessionId, turns, timeoutMs) => emulator.waitForTurns(sessionId, turns, timeoutMs),
    workItems: (sessionId) => emulator.report(sessionId).workItems,
    get requests() {
      return emulator.requests;
    },
    get unhandled() {
      return emulator.server.unhandled;
    },
    faults: {
      http: (rule) => emulator.server.faults.add(rule),
      dropStreams: (sessionId, dropOptions) =>
        closeStreams(emulator.session(sessionId), !dropOptions?.graceful),
      stealLease: (workId) => emulator.work.stealLease(emulator.workItem(workId)),
      failSends(sessionId, count, status = 500) {
        const path = `/v1/sessions/${emulator.session(sessionId).id}/events`;
        // A later call replaces an earlier one, as the count is "the next N sends".
        sendFaults.get(sessionId)?.cancel();
        const message = `injected fault: send failed with ${status}`;
        sendFaults.set(
          sessionId,
          emulator.server.faults.add({ method: 'POST', path, times: count, status, message }),
        );
      },
      stopWork(workId, stopOptions) {
        emulator.work.stop(emulator.workItem(workId), stopOptions?.force === true);
      },
      duplicateWork(sessionId) {
        const session = emulator.session(sessionId);
        return emulator.work.enqueue(session.environmentId, session.id).id;
      },
      healthcheck(environmentId) {
        emulator.environment(environmentId);
        return emulator.work.enqueue(environmentId, newId('hc'), 'healthcheck').id;
      },
      sessionError(sessionId, message = 'injected fault: the model is overloaded') {
        emit(emulator.session(sessionId), {
          type: 'session.error',
          error: { type: 'model_overloaded_error', message, retry_status: { type: 'retrying' } },
        });
      },
      expireLease: (workId) => emulator.work.expireLease(emulator.workItem(workId)),
    },
    close: () => emulator.close(),
  };
  return api;
}

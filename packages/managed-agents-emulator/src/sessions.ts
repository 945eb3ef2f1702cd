import type { EventStream } from '@statebox/emulator-kit';
import { newId, now } from './ids.js';
import type { StepResult } from './transcript.js';

/** A stored session event: every event carries `id`, `type` and `processed_at`. */
export type SessionEvent = { id: string; type: string; processed_at: string } & Record<string, unknown>;

/** What a posted tool result resolves a waiting tool call with. */
export interface ToolAnswer {
  content: unknown[];
  isError: boolean;
}

export interface ToolCallRecord {
  id: string;
  name: string;
  custom: boolean;
  answered: boolean;
  /** The turn gave up on it (interrupt, archive); a late result is accepted and recorded but changes nothing. */
  cancelled: boolean;
  resolve?: (answer: ToolAnswer) => void;
}

export interface TurnRecord {
  transcript: string | null;
  message: string;
  steps: StepResult[];
  /** `true` once the turn ended with `end_turn`. */
  finished: boolean;
  interrupted: boolean;
  error?: string;
}

export interface SessionRecord {
  id: string;
  agent: Record<string, unknown>;
  environmentId: string;
  title: string | null;
  metadata: Record<string, string>;
  resources: Record<string, unknown>[];
  status: 'idle' | 'running' | 'rescheduling' | 'terminated';
  createdAt: string;
  updatedAt: string;
  archivedAt: string | null;
  deleted: boolean;
  events: SessionEvent[];
  /** Open `GET /v1/sessions/{id}/events/stream` responses. */
  streams: Set<EventStream>;
  toolCalls: Map<string, ToolCallRecord>;
  /** Every `user.tool_result` / `user.custom_tool_result` post that named the id, accepted or rejected. */
  answerAttempts: Map<string, number>;
  /** Posts that were accepted as the answer (at most one per id, since duplicates are rejected with 400). */
  answersAccepted: Map<string, number>;
  rejectedAnswers: Array<{ toolUseId: string; status: number; reason: string }>;
  turns: TurnRecord[];
  /** User messages waiting for the scripted agent. */
  inbox: Array<{ text: string }>;
  turnRunning: boolean;
  abortTurn?: () => void;
  turnWaiters: Set<() => void>;
}

export function newSessionRecord(fields: {
  agent: Record<string, unknown>;
  environmentId: string;
  title: string | null;
  metadata: Record<string, string>;
  resources: Record<string, unknown>[];
}): SessionRecord {
  const stamp = now();
  return {
    id: newId('sesn'),
    ...fields,
    status: 'idle',
    createdAt: stamp,
    updatedAt: stamp,
    archivedAt: null,
    deleted: false,
    events: [],
    streams: new Set(),
    toolCalls: new Map(),
    answerAttempts: new Map(),
    answersAccepted: new Map(),
    rejectedAnswers: [],
    turns: [],
    inbox: [],
    turnRunning: false,
    turnWaiters: new Set(),
  };
}

/** Append an event to the session log and push it to every open stream. */
export function emit(
  session: SessionRecord,
  event: Record<string, unknown> & { type: string },
): SessionEvent {
  const stored = { id: newId('sevt'), processed_at: now(), ...event } as SessionEvent;
  session.events.push(stored);
  session.updatedAt = stored.processed_at;
  for (const stream of session.streams) stream.sendJson(stored.type, stored);
  return stored;
}

/** Close every open stream of the session; `abrupt` destroys the sockets as a dropped connection would. */
export function closeStreams(session: SessionRecord, abrupt: boolean): number {
  const count = session.streams.size;
  for (const stream of session.streams) {
    if (abrupt) stream.drop();
    else stream.end();
  }
  session.streams.clear();
  return count;
}

export function describeSession(session: SessionRecord): Record<string, unknown> {
  return {
    type: 'session',
    id: session.id,
    agent: session.agent,
    archived_at: session.archivedAt,
    budget: null,
    created_at: session.createdAt,
    environment_id: session.environmentId,
    metadata: session.metadata,
    outcome_evaluations: [],
    resources: session.resources,
    stats: {},
    status: session.status,
    title: session.title,
    updated_at: session.updatedAt,
    usage: { input_tokens: 0, output_tokens: 0 },
    vault_ids: [],
  };
}

import type Anthropic from '@anthropic-ai/sdk';
import { delay } from './delay.js';

/** A work item as `work.list` returns it: the fields the runner decides on. */
export type WorkView = {
  id: string;
  state: 'queued' | 'starting' | 'active' | 'stopping' | 'stopped';
  acknowledged_at: string | null;
  created_at: string;
  data: { type?: string; id: string };
};

/** States in which some worker holds (or is about to hold) the item's lease. */
const HELD: ReadonlySet<WorkView['state']> = new Set(['starting', 'active', 'stopping']);

/**
 * The environment's work items that are not stopped, by session id: the one view of "who serves what"
 * that every worker replica shares. Whether a session's sandbox may be suspended, and which of two
 * items for one session serves it, is decided from this, never from one worker's memory.
 */
export async function liveWorkBySession(
  client: Anthropic,
  environmentId: string,
  signal?: AbortSignal,
): Promise<Map<string, WorkView[]>> {
  const bySession = new Map<string, WorkView[]>();
  const pages = client.beta.environments.work.list(environmentId, { limit: 100 }, signal ? { signal } : {});
  for await (const item of pages as AsyncIterable<WorkView>) {
    if (item.state === 'stopped' || item.data?.type !== 'session') continue;
    const list = bySession.get(item.data.id) ?? [];
    list.push(item);
    bySession.set(item.data.id, list);
  }
  return bySession;
}

/**
 * Which of a session's live items serves it: the one acknowledged first (ties: the smaller id), among
 * those whose lease is held. Every worker computes the same answer from the same list, so of two
 * duplicate items exactly one runs tools; a re-delivered item keeps its id, so its new holder is the
 * owner and the old holder (whose next heartbeat gets 412) stops touching the session.
 */
export function ownerOf(items: readonly WorkView[]): string | undefined {
  const held = items.filter((item) => HELD.has(item.state));
  held.sort(
    (a, b) =>
      (a.acknowledged_at ?? a.created_at).localeCompare(b.acknowledged_at ?? b.created_at) ||
      a.id.localeCompare(b.id),
  );
  return held[0]?.id;
}

/**
 * Waits until `workId` owns its session (see `ownerOf`), checking the queue every `intervalMs`.
 * Resolves `true` when it does, `false` when `signal` aborts first. `onWait` is told once whom it waits
 * behind.
 */
export async function awaitOwnership(
  client: Anthropic,
  work: { id: string; environmentId: string; sessionId: string },
  signal: AbortSignal,
  onWait: (owner: string) => void,
  intervalMs = 1000,
): Promise<boolean> {
  let told = false;
  while (!signal.aborted) {
    const live = await liveWorkBySession(client, work.environmentId, signal).catch((error) => {
      if (signal.aborted) return undefined;
      throw error;
    });
    if (!live) return false;
    const owner = ownerOf(live.get(work.sessionId) ?? []);
    if (owner === undefined || owner === work.id) return true;
    if (!told) {
      told = true;
      onWait(owner);
    }
    await delay(intervalMs, signal);
  }
  return false;
}

/** Whether any live item other than `exceptWorkId` names the session. */
export async function otherLiveWork(
  client: Anthropic,
  environmentId: string,
  sessionId: string,
  exceptWorkId?: string,
): Promise<boolean> {
  const live = await liveWorkBySession(client, environmentId);
  return (live.get(sessionId) ?? []).some((item) => item.id !== exceptWorkId);
}

/**
 * Whether the session's turn is under way (its last status is `running`, or `idle` waiting on tool
 * results): then a worker must keep serving it, or hand it to another.
 */
export async function turnUnderWay(client: Anthropic, sessionId: string): Promise<boolean> {
  const page = await client.beta.sessions.events.list(sessionId, {
    order: 'desc',
    limit: 1,
    types: ['session.status_running', 'session.status_idle', 'session.status_terminated'],
  });
  const last = page.data[0] as { type: string; stop_reason?: { type?: string } } | undefined;
  if (!last) return false;
  return (
    last.type === 'session.status_running' ||
    (last.type === 'session.status_idle' && last.stop_reason?.type === 'requires_action')
  );
}

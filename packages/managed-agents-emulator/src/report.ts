import type { SessionRecord } from './sessions.js';
import type { StepResult } from './transcript.js';
import type { WorkQueue } from './work-queue.js';

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

export function reportSession(session: SessionRecord, work: WorkQueue): SessionReport {
  const steps = session.turns.flatMap((turn) => turn.steps);
  const toCounts = (map: Map<string, number>) => Object.fromEntries(map);
  const workItems = [...work.items.values()]
    .filter((item) => item.sessionId === session.id)
    .map((item) => ({ id: item.id, state: item.state, claims: item.claims }));
  return {
    sessionId: session.id,
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
export function waitForTurns(
  session: SessionRecord,
  turns: number,
  timeoutMs: number,
  report: () => SessionReport,
): Promise<SessionReport> {
  const done = () =>
    !session.turnRunning &&
    session.inbox.length === 0 &&
    session.turns.filter((t) => t.finished || t.interrupted).length >= turns;
  if (done()) return Promise.resolve(report());
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      session.turnWaiters.delete(check);
      reject(new Error(`session ${session.id}: ${turns} turn(s) did not finish within ${timeoutMs} ms`));
    }, timeoutMs);
    const check = () => {
      if (!done()) return;
      clearTimeout(timer);
      session.turnWaiters.delete(check);
      resolve(report());
    };
    session.turnWaiters.add(check);
  });
}

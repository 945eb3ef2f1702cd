/** What the runner reports while it works; the CLI prints these, `--json` emits them as lines. */
export type RunnerEvent =
  | { type: 'runner.started'; environmentId: string; workerId: string }
  | { type: 'runner.stopping'; sessions: string[] }
  | { type: 'runner.stopped' }
  | { type: 'work.claimed'; workId: string; sessionId: string }
  /** A duplicate or re-delivered item waits for the item that serves its session (`behind`) to end. */
  | { type: 'work.waiting'; workId: string; sessionId: string; behind: string }
  | {
      type: 'sandbox.ready';
      sessionId: string;
      sandboxId: string;
      how: 'resumed' | 'reused' | 'created' | 'forked';
      from?: string;
      ms: number;
    }
  | { type: 'skills.installed'; sessionId: string; skills: string[] }
  | { type: 'memory.mounted'; sessionId: string; storeId: string; root: string; memories: number }
  | {
      type: 'memory.synced';
      sessionId: string;
      storeId: string;
      uploaded: number;
      downloaded: number;
      deleted: number;
      conflicts: number;
    }
  | { type: 'tool.done'; sessionId: string; name: string; input: unknown; isError: boolean; ms: number }
  | { type: 'sandbox.suspended'; sessionId: string; sandboxId: string; ms: number }
  | { type: 'sandbox.destroyed'; sessionId: string; sandboxId: string; ms: number }
  | { type: 'sandbox.kept'; sessionId: string; sandboxId: string; reason: string }
  | { type: 'lease.ended'; workId: string; end: string; detail: string }
  | { type: 'work.stopped'; workId: string; sessionId: string; outcome: string }
  | { type: 'fork.refused'; sessionId: string; message: string }
  /** Preparing a session's sandbox failed in a way that may pass; the runner tries again after `delayMs`. */
  | { type: 'sandbox.retrying'; sessionId: string; attempt: number; delayMs: number; message: string }
  /** A re-delivered item waits `waitMs` for its previous holder to notice the lost lease. */
  | { type: 'work.redelivered'; workId: string; sessionId: string; waitMs: number }
  /** Drained mid-turn: the item's lease is left to lapse so the queue hands it to another worker. */
  | { type: 'work.handed-over'; workId: string; sessionId: string }
  | { type: 'error'; message: string; sessionId?: string; workId?: string };

/** How an error reads in an `error` event's message. */
export function describeError(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

import type Anthropic from '@anthropic-ai/sdk';

export type LeaseEnd =
  /** The server says the item is stopping or did not extend the lease: wind down gracefully. */
  | 'stopping'
  /** Another worker holds the lease (HTTP 412, or no successful beat within the TTL): touch nothing. */
  | 'lost'
  /** The server rejected the heartbeat for good (a 4xx other than 412). */
  | 'rejected'
  /** We ended it ourselves. */
  | 'released';

export type Lease = {
  /** Aborted when the lease ends for any reason. */
  readonly signal: AbortSignal;
  readonly end: LeaseEnd | undefined;
  /** The server's lease TTL, learned from the heartbeats (90 s until the first answer). */
  readonly ttlMs: number;
  /** Settles after the first heartbeat's answer (or failure), when `ttlMs` is the server's. */
  readonly firstBeat: Promise<void>;
  /** Calls `listener` with the TTL now and after every heartbeat that reports one. */
  onTtl(listener: (ttlMs: number) => void): void;
  release(): void;
};

const FIRST_HEARTBEAT = 'NO_HEARTBEAT';
const DEFAULT_TTL_MS = 90_000;
const MAX_INTERVAL_MS = 30_000;

/**
 * Holds a work item's lease by heartbeating it. The SDK's own loop (`heartbeatLoop` in
 * `lib/environments/worker.ts`) is not exported, so this one follows the protocol's rules: the first beat says
 * `NO_HEARTBEAT`, every later one echoes the server's `last_heartbeat`, the interval is half the TTL
 * (1 s to 30 s), each beat is cut off after one interval so a hung request cannot outlive the lease,
 * and a lease with no successful beat for a whole TTL is assumed lost.
 *
 * Started before anything slow (sandbox start, skills, memory), so a long set-up cannot let the item be
 * reclaimed by another worker while this one still works on it.
 */
export function holdLease(
  client: Anthropic,
  work: { id: string; environmentId: string },
  onEnd: (end: LeaseEnd, detail: string) => void,
): Lease {
  const controller = new AbortController();
  let end: LeaseEnd | undefined;
  let ttlMs = DEFAULT_TTL_MS;
  let intervalMs = MAX_INTERVAL_MS;
  let last = FIRST_HEARTBEAT;
  let lastSuccess = Date.now();
  const ttlListeners: Array<(ttlMs: number) => void> = [];

  const finish = (reason: LeaseEnd, detail: string) => {
    if (end) return;
    end = reason;
    controller.abort(new Error(`lease ${reason}: ${detail}`));
    onEnd(reason, detail);
  };

  const beat = async () => {
    const cutoff = AbortSignal.timeout(intervalMs);
    try {
      const response = await client.beta.environments.work.heartbeat(
        work.id,
        { environment_id: work.environmentId, expected_last_heartbeat: last },
        // The client's own retries stay on (as in the SDK's loop): the cutoff bounds the whole call.
        { signal: AbortSignal.any([cutoff, controller.signal]) },
      );
      lastSuccess = Date.now();
      last = response.last_heartbeat;
      if (response.ttl_seconds > 0) {
        ttlMs = response.ttl_seconds * 1000;
        intervalMs = Math.max(1000, Math.min(ttlMs / 2, MAX_INTERVAL_MS));
        for (const listener of ttlListeners) listener(ttlMs);
      }
      if (response.state === 'stopping' || response.state === 'stopped') {
        finish('stopping', `work item is ${response.state}`);
      } else if (!response.lease_extended) {
        finish('stopping', 'lease not extended');
      }
    } catch (error) {
      if (controller.signal.aborted) return;
      const status = (error as { status?: number }).status;
      if (status === 412) {
        finish('lost', 'heartbeat precondition failed (412): another worker holds the lease');
      } else if (status !== undefined && status >= 400 && status < 500 && ![408, 409, 429].includes(status)) {
        finish('rejected', `heartbeat rejected with HTTP ${status}`);
      } else if (Date.now() - lastSuccess > ttlMs) {
        finish('lost', `no successful heartbeat within the ${ttlMs} ms lease`);
      }
    }
  };

  let firstBeatDone: () => void = () => undefined;
  const firstBeat = new Promise<void>((resolve) => {
    firstBeatDone = resolve;
  });
  void (async () => {
    while (!controller.signal.aborted) {
      await beat();
      firstBeatDone();
      if (controller.signal.aborted) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, intervalMs);
        controller.signal.addEventListener(
          'abort',
          () => {
            clearTimeout(timer);
            resolve();
          },
          { once: true },
        );
      });
    }
  })();

  return {
    signal: controller.signal,
    get end() {
      return end;
    },
    get ttlMs() {
      return ttlMs;
    },
    firstBeat,
    onTtl(listener) {
      ttlListeners.push(listener);
      listener(ttlMs);
    },
    release: () => finish('released', 'released by the worker'),
  };
}

/** The sessions token inside a work item's secret (base64url JSON), or undefined. Never logged. */
export function sessionsTokenFromSecret(secret: string | null | undefined): string | undefined {
  if (!secret) return undefined;
  try {
    const base64 = secret.replace(/-/g, '+').replace(/_/g, '/');
    const padded = base64 + '='.repeat((4 - (base64.length % 4)) % 4);
    const parsed = JSON.parse(Buffer.from(padded, 'base64').toString('utf8')) as { sessions_token?: unknown };
    return typeof parsed.sessions_token === 'string' && parsed.sessions_token
      ? parsed.sessions_token
      : undefined;
  } catch {
    return undefined;
  }
}

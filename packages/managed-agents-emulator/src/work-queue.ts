import { ApiError, conflict, notFound } from './errors.js';
import { base64url, newId, newKey, now } from './ids.js';

export type WorkState = 'queued' | 'starting' | 'active' | 'stopping' | 'stopped';

export interface WorkRecord {
  id: string;
  environmentId: string;
  /** `session` items name a session; `healthcheck` items (data `{type:'healthcheck', id}`) name none. */
  kind: 'session' | 'healthcheck';
  /** The session id, or the healthcheck's own id. */
  sessionId: string;
  state: WorkState;
  createdAt: string;
  acknowledgedAt: string | null;
  startedAt: string | null;
  latestHeartbeatAt: string | null;
  stopRequestedAt: string | null;
  stoppedAt: string | null;
  metadata: Record<string, string>;
  /** The value the next heartbeat must echo; `null` means `NO_HEARTBEAT`. */
  lastHeartbeat: string | null;
  ttlSeconds: number;
  /** Epoch ms after which an acked lease counts as lost and a new poll may reclaim the item. */
  leaseExpiresAt: number | null;
  /** Epoch ms of the poll that claimed the item (claimed but not acked), or `null`. */
  claimedAt: number | null;
  claimedBy: string | null;
  /** The per-item sessions token carried in the poll response's `secret`. */
  sessionsToken: string;
  /** How many times a poll handed this item out. */
  claims: number;
}

export interface PollOptions {
  blockMs: number | null;
  reclaimOlderThanMs: number;
  workerId: string | null;
}

const MAX_TTL_SECONDS = 600;

/** The per-environment work queues and the lease state machine (queued → starting → active → stopping → stopped). */
export class WorkQueue {
  readonly items = new Map<string, WorkRecord>();
  readonly #waiters = new Map<string, Set<() => void>>();
  readonly #workersPolling = new Map<string, Map<string, number>>();
  readonly #tokens = new Map<string, WorkRecord>();

  constructor(
    private readonly leaseTtlSeconds: number,
    private readonly onStopped: (work: WorkRecord) => void,
  ) {}

  enqueue(environmentId: string, sessionId: string, kind: WorkRecord['kind'] = 'session'): WorkRecord {
    const work: WorkRecord = {
      id: newId('work'),
      environmentId,
      kind,
      sessionId,
      state: 'queued',
      createdAt: now(),
      acknowledgedAt: null,
      startedAt: null,
      latestHeartbeatAt: null,
      stopRequestedAt: null,
      stoppedAt: null,
      metadata: {},
      lastHeartbeat: null,
      ttlSeconds: this.leaseTtlSeconds,
      leaseExpiresAt: null,
      claimedAt: null,
      claimedBy: null,
      sessionsToken: newKey('sk-ant-req-'),
      claims: 0,
    };
    this.items.set(work.id, work);
    this.#tokens.set(work.sessionsToken, work);
    this.#notify(environmentId);
    return work;
  }

  byToken(token: string): WorkRecord | undefined {
    return this.#tokens.get(token);
  }

  get(environmentId: string, workId: string): WorkRecord {
    const work = this.items.get(workId);
    if (!work || work.environmentId !== environmentId) {
      throw notFound(`work item ${workId} not found in environment ${environmentId}`);
    }
    this.#expire(work);
    return work;
  }

  /** The session's non-stopped work item, if any: at most one exists per session. */
  liveFor(sessionId: string): WorkRecord | undefined {
    for (const work of this.items.values()) {
      if (work.sessionId !== sessionId || work.kind !== 'session') continue;
      this.#expire(work);
      if (work.state !== 'stopped') return work;
    }
    return undefined;
  }

  forEnvironment(environmentId: string): WorkRecord[] {
    const list = [...this.items.values()].filter((work) => work.environmentId === environmentId);
    for (const work of list) this.#expire(work);
    return list;
  }

  async poll(environmentId: string, options: PollOptions): Promise<WorkRecord | null> {
    if (options.workerId) {
      const workers = this.#workersPolling.get(environmentId) ?? new Map<string, number>();
      workers.set(options.workerId, Date.now());
      this.#workersPolling.set(environmentId, workers);
    }
    const deadline = Date.now() + (options.blockMs ?? 0);
    while (true) {
      const work = this.#claim(environmentId, options);
      if (work) return work;
      const remaining = deadline - Date.now();
      if (remaining <= 0) return null;
      await this.#waitForChange(environmentId, remaining);
    }
  }

  ack(work: WorkRecord): WorkRecord {
    if (work.state !== 'queued') throw conflict(`work item ${work.id} is ${work.state}, not queued`);
    work.state = 'starting';
    work.acknowledgedAt = now();
    work.claimedAt = null;
    work.leaseExpiresAt = Date.now() + work.ttlSeconds * 1000;
    return work;
  }

  heartbeat(
    work: WorkRecord,
    expected: string | null,
    desiredTtlSeconds: number | null,
  ): Record<string, unknown> {
    if (work.state === 'stopping' || work.state === 'stopped') {
      return this.#heartbeatBody(work, false);
    }
    if (work.state === 'queued' && work.claimedAt === null) {
      throw conflict(`work item ${work.id} is queued and unclaimed: poll and ack it before heartbeating`);
    }
    const current = work.lastHeartbeat ?? 'NO_HEARTBEAT';
    if ((expected ?? 'NO_HEARTBEAT') !== current) {
      throw new ApiError(
        412,
        'invalid_request_error',
        `work item ${work.id}: expected_last_heartbeat ${JSON.stringify(expected)} does not match ${JSON.stringify(current)}; another worker holds the lease`,
        {
          retryable: false,
          details: {
            error_code: 'heartbeat_precondition_failed',
            current_state: {
              last_heartbeat: work.lastHeartbeat,
              lease_extended: false,
              state: work.state,
              ttl_seconds: work.ttlSeconds,
            },
          },
        },
      );
    }
    if (desiredTtlSeconds !== null)
      work.ttlSeconds = Math.min(MAX_TTL_SECONDS, Math.max(1, desiredTtlSeconds));
    if (work.state === 'queued') {
      // Heartbeating a claimed item without an ack (as the Cloudflare template does) acks it implicitly.
      work.state = 'starting';
      work.acknowledgedAt = now();
      work.claimedAt = null;
    }
    if (work.state === 'starting') {
      work.state = 'active';
      work.startedAt = now();
    }
    let stamp = now();
    // Two beats in one millisecond would echo the same value and hide a lost update; keep them distinct.
    if (stamp === work.lastHeartbeat) stamp = new Date(Date.parse(stamp) + 1).toISOString();
    work.lastHeartbeat = stamp;
    work.latestHeartbeatAt = stamp;
    work.leaseExpiresAt = Date.now() + work.ttlSeconds * 1000;
    return this.#heartbeatBody(work, true);
  }

  /**
   * The lease lapses now, as if its worker stopped heartbeating: the next poll re-delivers the item
   * (same id, a new secret holder), and the old holder's next heartbeat fails with 412.
   */
  expireLease(work: WorkRecord): void {
    if (work.state === 'starting' || work.state === 'active') work.leaseExpiresAt = Date.now();
    this.#notify(work.environmentId);
  }

  /** Pretend another worker took the lease: the current holder's next heartbeat fails with 412. */
  stealLease(work: WorkRecord): void {
    work.lastHeartbeat = new Date(Date.now() + 1_000).toISOString();
  }

  stop(work: WorkRecord, force: boolean): WorkRecord {
    if (work.state === 'stopped') {
      throw conflict(`work item ${work.id} is already stopped`);
    }
    work.stopRequestedAt ??= now();
    if (force || work.state === 'queued') {
      this.#markStopped(work);
    } else {
      work.state = 'stopping';
    }
    return work;
  }

  stats(environmentId: string): Record<string, unknown> {
    const items = this.forEnvironment(environmentId);
    const queued = items.filter((work) => work.state === 'queued' && work.claimedAt === null);
    const pending = items.filter((work) => work.state === 'queued' && work.claimedAt !== null);
    const oldest = queued.map((work) => work.createdAt).sort()[0] ?? null;
    const cutoff = Date.now() - 30_000;
    const workers = [...(this.#workersPolling.get(environmentId)?.values() ?? [])].filter((t) => t >= cutoff);
    return {
      type: 'work_queue_stats',
      depth: queued.length,
      pending: pending.length,
      oldest_queued_at: oldest,
      workers_polling: workers.length,
    };
  }

  describe(work: WorkRecord, withSecret: boolean, apiBaseUrl: string): Record<string, unknown> {
    return {
      type: 'work',
      id: work.id,
      acknowledged_at: work.acknowledgedAt,
      created_at: work.createdAt,
      data: { type: work.kind, id: work.sessionId },
      environment_id: work.environmentId,
      latest_heartbeat_at: work.latestHeartbeatAt,
      metadata: work.metadata,
      secret: withSecret
        ? base64url(JSON.stringify({ sessions_token: work.sessionsToken, api_base_url: apiBaseUrl }))
        : null,
      started_at: work.startedAt,
      state: work.state,
      stop_requested_at: work.stopRequestedAt,
      stopped_at: work.stoppedAt,
    };
  }

  close(): void {
    for (const waiters of this.#waiters.values()) for (const wake of waiters) wake();
    this.#waiters.clear();
  }

  #heartbeatBody(work: WorkRecord, extended: boolean): Record<string, unknown> {
    return {
      type: 'work_heartbeat',
      last_heartbeat: work.lastHeartbeat ?? '',
      lease_extended: extended,
      state: work.state,
      ttl_seconds: work.ttlSeconds,
    };
  }

  #claim(environmentId: string, options: PollOptions): WorkRecord | undefined {
    const nowMs = Date.now();
    const candidates = this.forEnvironment(environmentId)
      .filter((work) => {
        if (work.state === 'queued') {
          return work.claimedAt === null || nowMs - work.claimedAt >= options.reclaimOlderThanMs;
        }
        // An acked item whose lease lapsed is up for grabs: its worker is presumed dead.
        return (
          (work.state === 'starting' || work.state === 'active') &&
          work.leaseExpiresAt !== null &&
          work.leaseExpiresAt <= nowMs
        );
      })
      .sort((a, b) => a.createdAt.localeCompare(b.createdAt));
    const work = candidates[0];
    if (!work) return undefined;
    work.state = 'queued';
    work.claimedAt = nowMs;
    work.claimedBy = options.workerId;
    work.lastHeartbeat = null;
    work.leaseExpiresAt = null;
    work.claims += 1;
    return work;
  }

  /** A `stopping` item whose lease lapsed is stopped: no worker is left to finish it. */
  #expire(work: WorkRecord): void {
    if (work.state === 'stopping' && work.leaseExpiresAt !== null && work.leaseExpiresAt <= Date.now()) {
      this.#markStopped(work);
    }
  }

  #markStopped(work: WorkRecord): void {
    work.state = 'stopped';
    work.stoppedAt = now();
    work.claimedAt = null;
    work.leaseExpiresAt = null;
    this.onStopped(work);
  }

  #notify(environmentId: string): void {
    const waiters = this.#waiters.get(environmentId);
    if (!waiters) return;
    this.#waiters.delete(environmentId);
    for (const wake of waiters) wake();
  }

  #waitForChange(environmentId: string, timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const waiters = this.#waiters.get(environmentId) ?? new Set<() => void>();
      this.#waiters.set(environmentId, waiters);
      const wake = () => {
        clearTimeout(timer);
        waiters.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, timeoutMs);
      waiters.add(wake);
    });
  }
}

import { getSandbox, isPlatformTransientError, type Sandbox } from '@cloudflare/sandbox';
import { shellQuote, WorkerError } from './http.js';
import type { BackupRecord, SandboxRecord, StateboxRegistry } from './registry.js';

/** The bindings and settings the statebox Worker reads (see the README's wrangler.jsonc). */
export type Env = {
  Sandbox: DurableObjectNamespace<Sandbox>;
  STATEBOX_REGISTRY: DurableObjectNamespace<StateboxRegistry>;
  /** R2 bucket for backups (the SDK's `BACKUP_BUCKET` binding). */
  BACKUP_BUCKET: R2Bucket;
  /** Bearer token the Node provider sends (a Worker secret). */
  STATEBOX_TOKEN?: string;
  /** Seconds a backup stays valid; the SDK refuses to restore an expired one. Default ten years. */
  STATEBOX_BACKUP_TTL_SECONDS?: string;
  /** Largest /workspace a suspend or fork backs up, in bytes. Default 2 GiB. */
  STATEBOX_MAX_BACKUP_BYTES?: string;
  /**
   * Directories a suspend or fork backs up, comma-separated; each must be under /workspace, /home,
   * /tmp, /var/tmp or /app (the SDK's rule). Default `/workspace,/home` (the image links /root into /home).
   */
  STATEBOX_BACKUP_DIRS?: string;
  /** How long an idle container lives before Cloudflare stops it (the SDK's `sleepAfter`). Default `10m`. */
  STATEBOX_SLEEP_AFTER?: string;
};

export const WORKDIR = '/workspace';
/** Exists in a container whose /workspace holds the sandbox's state; a restarted container lacks it. */
export const READY_MARKER = '/run/statebox/ready';
const TEN_YEARS_SECONDS = 10 * 365 * 24 * 3600;

export function registry(env: Env): DurableObjectStub<StateboxRegistry> {
  return env.STATEBOX_REGISTRY.get(env.STATEBOX_REGISTRY.idFromName('registry'));
}

export function container(env: Env, id: string) {
  return getSandbox(env.Sandbox, id, { sleepAfter: env.STATEBOX_SLEEP_AFTER ?? '10m' });
}

export function backupDirs(env: Env): string[] {
  return (env.STATEBOX_BACKUP_DIRS ?? `${WORKDIR},/home`)
    .split(',')
    .map((dir) => dir.trim())
    .filter(Boolean);
}

export function backupOptions(env: Env, dir: string) {
  return {
    dir,
    // The R2 binding path: the Durable Object streams the archive between container and bucket. The
    // presigned-URL path needs R2 API credentials and, to restore, FUSE (which sleeps with the container).
    localBucket: true,
    ttl: Number(env.STATEBOX_BACKUP_TTL_SECONDS ?? TEN_YEARS_SECONDS),
  };
}

export function maxBackupBytes(env: Env): number {
  return Number(env.STATEBOX_MAX_BACKUP_BYTES ?? 2 * 1024 ** 3);
}

export function newSandboxId(): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz234567';
  const bytes = crypto.getRandomValues(new Uint8Array(20));
  return `sbx${[...bytes].map((byte) => alphabet[byte & 31]).join('')}`;
}

export function info(record: SandboxRecord) {
  return {
    id: record.id,
    provider: 'cloudflare',
    status: record.status,
    labels: record.labels,
    createdAt: record.createdAt,
    ...(record.parentId ? { parentId: record.parentId } : {}),
    workdir: record.workdir,
  };
}

export async function requireRecord(env: Env, id: string): Promise<SandboxRecord> {
  const record = (await registry(env).get(id)) as SandboxRecord | null;
  if (!record)
    throw new WorkerError('not_found', `Sandbox ${id} not found: it was destroyed or never existed.`, {
      sandboxId: id,
    });
  return record;
}

export async function requireRunning(env: Env, id: string, operation: string): Promise<SandboxRecord> {
  const record = await requireRecord(env, id);
  if (record.status !== 'running') {
    throw new WorkerError(
      'invalid_state',
      `Cannot ${operation} sandbox ${id}: it is ${record.status}. Resume it first.`,
      {
        sandboxId: id,
        status: record.status,
      },
    );
  }
  return record;
}

/** A lifecycle lease lives this long unless renewed; a Worker that dies holding one frees it this late. */
const LEASE_TTL_MS = 30_000;
/** How long an operation waits for another one on the same sandbox (the Node provider's lifecycle timeout). */
const LEASE_WAIT_MS = 600_000;

/**
 * Runs `work` holding the lifecycle lease of every sandbox in `ids` (taken in sorted order, so two
 * operations on the same pair cannot deadlock). Suspend, resume, fork, destroy and the restore of a
 * restarted container take it: without it a fork backing up a source that a concurrent suspend is
 * releasing loses its container mid-backup, and an exec's restore could restart a suspended sandbox.
 */
export async function withLease<T>(
  env: Env,
  ids: readonly string[],
  operation: string,
  work: () => Promise<T>,
  signal?: AbortSignal,
): Promise<T> {
  const holder = crypto.randomUUID();
  const held: string[] = [];
  const stub = registry(env);
  const deadline = Date.now() + LEASE_WAIT_MS;
  try {
    for (const id of [...new Set(ids)].sort()) {
      for (let wait = 20; ; wait = Math.min(wait * 2, 250)) {
        const answer = (await stub.acquire(id, holder, operation, LEASE_TTL_MS)) as
          | { granted: true }
          | { granted: false; operation: string; expiresInMs: number };
        if (answer.granted) break;
        if (signal?.aborted)
          throw new WorkerError('transient', `${operation} of ${id} was cancelled while it waited.`);
        if (Date.now() > deadline) {
          throw new WorkerError(
            'transient',
            `Sandbox ${id} is busy: a ${answer.operation} has held it for over ${LEASE_WAIT_MS / 1000} s. Retry later.`,
            { sandboxId: id, busyWith: answer.operation },
          );
        }
        await new Promise((resolve) => setTimeout(resolve, wait));
      }
      held.push(id);
    }
    const renewal = setInterval(() => {
      for (const id of held) stub.renew(id, holder, LEASE_TTL_MS).catch(() => undefined);
    }, LEASE_TTL_MS / 3);
    try {
      return await work();
    } finally {
      clearInterval(renewal);
    }
  } finally {
    await Promise.all(held.map((id) => stub.release(id, holder).catch(() => undefined)));
  }
}

/**
 * An exec or file call found a running sandbox's container without the ready marker (Cloudflare
 * restarted it, or the call started a container after a concurrent suspend released it). Under the
 * lease: restores a sandbox that is still running and still unrestored; for one that was suspended or
 * destroyed meanwhile, releases the container the call started and reports the state.
 */
export async function recoverRestarted(env: Env, id: string, operation: string): Promise<void> {
  await withLease(env, [id], 'restore', async () => {
    const record = (await registry(env).get(id)) as SandboxRecord | null;
    if (record?.status !== 'running') {
      await container(env, id)
        .destroy()
        .catch(() => undefined);
      if (!record)
        throw new WorkerError('not_found', `Sandbox ${id} was destroyed during ${operation}.`, {
          sandboxId: id,
        });
      throw new WorkerError('invalid_state', `Sandbox ${id} was ${record.status} during ${operation}.`, {
        sandboxId: id,
        status: record.status,
      });
    }
    const marked = await container(env, id).exec(`test -e ${shellQuote(READY_MARKER)}`);
    if (marked.exitCode !== 0) await recover(env, record);
  });
}

const recovering = new Map<string, Promise<void>>();

/**
 * Puts a container's /workspace back to the sandbox's latest backup and marks it ready. Runs at resume,
 * at fork, and whenever an operation finds a running sandbox's container without the marker: Cloudflare
 * restarted it (sleepAfter, eviction, a deploy), and a container starts from the bare image.
 */
export function recover(env: Env, record: SandboxRecord): Promise<void> {
  const pending = recovering.get(record.id);
  if (pending) return pending;
  const work = (async () => {
    const sandbox = container(env, record.id);
    const dirs = [WORKDIR, ...backupDirs(env)].map((dir) => shellQuote(dir)).join(' ');
    // Restores extract over a directory, so empty each first (keeping the directory: /root links into /home).
    const clear = record.backup ? `find ${dirs} -mindepth 1 -delete && ` : '';
    await sandbox.exec(`mkdir -p ${dirs} /run/statebox && ${clear}true`);
    for (const part of record.backup?.parts ?? []) {
      await sandbox.restoreBackup({ id: part.id, dir: part.dir, localBucket: part.localBucket });
    }
    await sandbox.exec(`: > ${shellQuote(READY_MARKER)}`);
  })().finally(() => recovering.delete(record.id));
  recovering.set(record.id, work);
  return work;
}

export async function deleteBackups(env: Env, backups: readonly BackupRecord[]): Promise<void> {
  for (const part of backups.flatMap((backup) => backup.parts)) {
    await env.BACKUP_BUCKET.delete([`backups/${part.id}/data.sqsh`, `backups/${part.id}/meta.json`]);
  }
}

/**
 * Maps an SDK or platform failure to the Worker's error answer. A sandbox that a concurrent call
 * suspended or destroyed is reported as such, never as a transient failure.
 */
export async function translate(
  env: Env,
  error: unknown,
  id: string | undefined,
  operation: string,
): Promise<WorkerError> {
  if (error instanceof WorkerError) return error;
  const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  if (id) {
    const record = (await registry(env)
      .get(id)
      .catch(() => undefined)) as SandboxRecord | null | undefined;
    if (record === null)
      return new WorkerError('not_found', `Sandbox ${id} was destroyed during ${operation}.`, {
        sandboxId: id,
      });
    if (record && record.status !== 'running' && operation !== 'resume' && operation !== 'fork') {
      return new WorkerError('invalid_state', `Sandbox ${id} was ${record.status} during ${operation}.`, {
        sandboxId: id,
        status: record.status,
      });
    }
  }
  if (
    isPlatformTransientError(error) ||
    /ContainerUnavailable|Network connection lost|reset|timed out|not running/i.test(message)
  ) {
    return new WorkerError('transient', `${operation} failed for a reason that may pass: ${message}`, {
      sandboxId: id,
    });
  }
  return new WorkerError('internal', `${operation} failed: ${message}`, { sandboxId: id });
}

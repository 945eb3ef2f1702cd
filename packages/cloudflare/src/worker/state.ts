import { shellQuote, WorkerError } from './http.js';
import type { BackupPart, BackupRecord, SandboxRecord } from './registry.js';
import {
  backupDirs,
  backupOptions,
  container,
  deleteBackups,
  type Env,
  info,
  maxBackupBytes,
  newSandboxId,
  READY_MARKER,
  recover,
  registry,
  requireRecord,
  translate,
  WORKDIR,
  withLease,
} from './sandboxes.js';

export type CreateBody = { labels?: Record<string, string>; env?: Record<string, string>; image?: string };

function checkStrings(value: unknown, name: string): Record<string, string> {
  if (value === undefined) return {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new WorkerError('bad_request', `${name} must be an object of strings.`);
  }
  for (const [key, item] of Object.entries(value)) {
    if (typeof item !== 'string') throw new WorkerError('bad_request', `${name}.${key} must be a string.`);
  }
  return value as Record<string, string>;
}

/** Starts the container (so the sandbox is running when create returns) and registers the sandbox. */
export async function create(env: Env, body: CreateBody) {
  if (body.image !== undefined) {
    throw new WorkerError(
      'bad_request',
      'The image is fixed by the Worker (wrangler.jsonc containers[].image); create() takes no image.',
    );
  }
  const record: SandboxRecord = {
    id: newSandboxId(),
    status: 'running',
    labels: checkStrings(body.labels, 'labels'),
    env: checkStrings(body.env, 'env'),
    createdAt: new Date().toISOString(),
    parentId: null,
    workdir: WORKDIR,
    backup: null,
  };
  return withLease(env, [record.id], 'create', async () => {
    await registry(env).insert(record);
    try {
      await recover(env, record);
    } catch (error) {
      await destroyHeld(env, record.id).catch(() => undefined);
      throw await translate(env, error, undefined, 'create');
    }
    return info(record);
  });
}

/** Backs the persistent directories up to R2 through the SDK, refusing them over the size limit first. */
async function backUp(env: Env, id: string): Promise<BackupRecord> {
  const sandbox = container(env, id);
  const limit = maxBackupBytes(env);
  const dirs = backupDirs(env);
  const usage = await sandbox.exec(`du -sbc ${dirs.map(shellQuote).join(' ')} | tail -n 1 | cut -f1`);
  const bytes = Number(usage.stdout.trim());
  if (bytes > limit) {
    throw new WorkerError(
      'backup_too_large',
      `Sandbox ${id}'s ${dirs.join(' and ')} hold ${bytes} bytes, over the backup limit of ${limit} (STATEBOX_MAX_BACKUP_BYTES). ` +
        'Delete files or raise the limit; the sandbox keeps running with its files.',
      { sandboxId: id, size: bytes, maxBytes: limit },
    );
  }
  const parts: BackupPart[] = [];
  let sizeBytes = 0;
  try {
    for (const dir of dirs) {
      const handle = await sandbox.createBackup(backupOptions(env, dir));
      parts.push({ id: handle.id, dir: handle.dir, localBucket: handle.localBucket });
      sizeBytes += (await env.BACKUP_BUCKET.head(`backups/${handle.id}/data.sqsh`))?.size ?? 0;
    }
  } catch (error) {
    await deleteBackups(env, [{ id: parts[0]?.id ?? '', parts, sizeBytes }]);
    throw error;
  }
  return { id: parts[0]!.id, parts, sizeBytes };
}

/** Backs the workspace up, records it, then releases the container. A failed backup leaves it running. */
export function suspend(env: Env, id: string, signal?: AbortSignal) {
  return withLease(env, [id], 'suspend', () => suspendHeld(env, id), signal);
}

async function suspendHeld(env: Env, id: string) {
  let record = await requireRecord(env, id);
  if (record.status === 'suspended') return info(record);
  let backup: BackupRecord;
  try {
    backup = await backUp(env, id);
  } catch (error) {
    throw await translate(env, error, id, 'suspend');
  }
  const { record: updated, orphans } = (await registry(env).setBackup(id, backup, 'suspended')) as {
    record: SandboxRecord | null;
    orphans: BackupRecord[];
  };
  if (!updated) {
    await deleteBackups(env, [backup]);
    throw new WorkerError('not_found', `Sandbox ${id} was destroyed during suspend.`, { sandboxId: id });
  }
  record = updated;
  await deleteBackups(env, orphans);
  await container(env, id).destroy();
  return { ...info(record), backupBytes: backup.sizeBytes };
}

export function resume(env: Env, id: string, signal?: AbortSignal) {
  return withLease(env, [id], 'resume', () => resumeHeld(env, id), signal);
}

async function resumeHeld(env: Env, id: string) {
  const record = await requireRecord(env, id);
  if (record.status === 'running') return info(record);
  try {
    await recover(env, record);
  } catch (error) {
    throw await translate(env, error, id, 'resume');
  }
  const updated = (await registry(env).setStatus(id, 'running')) as SandboxRecord | null;
  if (!updated)
    throw new WorkerError('not_found', `Sandbox ${id} was destroyed during resume.`, { sandboxId: id });
  return { ...info(updated), backupBytes: record.backup?.sizeBytes ?? 0 };
}

/**
 * Restores the source's latest state into a new sandbox: a fresh backup of a running source (whose
 * processes keep running), or the backup a suspended source already has (no container needed).
 */
export async function fork(
  env: Env,
  id: string,
  body: { labels?: Record<string, string> },
  signal?: AbortSignal,
) {
  const labels = checkStrings(body.labels, 'labels');
  await requireRecord(env, id);
  const childId = newSandboxId();
  return withLease(env, [id, childId], 'fork', () => forkHeld(env, id, childId, labels), signal);
}

async function forkHeld(env: Env, id: string, childId: string, labels: Record<string, string>) {
  // Re-read under the lease: a suspend that held it meanwhile leaves a backup and no container.
  const source = await requireRecord(env, id);
  let backup = source.backup;
  try {
    if (source.status === 'running') backup = await backUp(env, id);
  } catch (error) {
    throw await translate(env, error, id, 'fork');
  }
  const child: SandboxRecord = {
    id: childId,
    status: 'running',
    labels,
    env: source.env,
    createdAt: new Date().toISOString(),
    parentId: source.id,
    workdir: source.workdir,
    backup,
  };
  const { orphans } = (await registry(env).insertFork(child, source.status === 'running')) as {
    orphans: BackupRecord[];
  };
  await deleteBackups(env, orphans);
  try {
    await recover(env, child);
  } catch (error) {
    await destroyHeld(env, child.id).catch(() => undefined);
    throw await translate(env, error, undefined, 'fork');
  }
  return info(child);
}

export function destroy(env: Env, id: string, signal?: AbortSignal): Promise<void> {
  return withLease(env, [id], 'destroy', () => destroyHeld(env, id), signal);
}

async function destroyHeld(env: Env, id: string): Promise<void> {
  const { removed, orphans } = (await registry(env).remove(id)) as {
    removed: boolean;
    orphans: BackupRecord[];
  };
  if (!removed) return;
  await container(env, id).destroy();
  await deleteBackups(env, orphans);
}

/** Whether a running sandbox's container still has its state (for `GET …/health`). */
export async function ready(env: Env, id: string): Promise<boolean> {
  const result = await container(env, id).exec(`test -e ${READY_MARKER}`);
  return result.exitCode === 0;
}

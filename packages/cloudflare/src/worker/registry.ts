import { DurableObject } from 'cloudflare:workers';

/** One `createBackup` handle as `@cloudflare/sandbox` returns it. */
export type BackupPart = { id: string; dir: string; localBucket?: boolean };

/** A sandbox's state at one moment: one SDK backup per persistent directory, and their total size. */
export type BackupRecord = { id: string; parts: BackupPart[]; sizeBytes: number };

export type SandboxRecord = {
  id: string;
  status: 'running' | 'suspended';
  labels: Record<string, string>;
  env: Record<string, string>;
  createdAt: string;
  parentId: string | null;
  workdir: string;
  /** The latest backup: what a suspended sandbox resumes from, and what a restarted container gets back. */
  backup: BackupRecord | null;
};

type Row = {
  id: string;
  status: string;
  labels: string;
  env: string;
  created_at: string;
  parent_id: string | null;
  workdir: string;
  backup: string | null;
};

/**
 * The statebox registry: every sandbox the Worker made, its labels, status and latest backup, in one
 * Durable Object with SQLite storage (Durable Object namespaces cannot be listed, and the Sandbox DO's
 * own storage is wiped by `destroy()`, which suspend uses to release the container).
 * One instance serves the whole Worker (`idFromName('registry')`); its methods run one at a time.
 */
export class StateboxRegistry extends DurableObject<Record<string, unknown>> {
  constructor(ctx: DurableObjectState, env: Record<string, unknown>) {
    super(ctx, env);
    ctx.storage.sql.exec(`CREATE TABLE IF NOT EXISTS sandboxes (
      id TEXT PRIMARY KEY,
      status TEXT NOT NULL,
      labels TEXT NOT NULL,
      env TEXT NOT NULL,
      created_at TEXT NOT NULL,
      parent_id TEXT,
      workdir TEXT NOT NULL,
      backup TEXT
    )`);
    ctx.storage.sql.exec(`CREATE TABLE IF NOT EXISTS leases (
      id TEXT PRIMARY KEY,
      holder TEXT NOT NULL,
      operation TEXT NOT NULL,
      expires_at INTEGER NOT NULL
    )`);
  }

  /**
   * Takes sandbox `id`'s lifecycle lease for `holder` unless another holder has one that has not
   * expired. Suspend, resume, fork, destroy and the restore of a restarted container hold it, so they
   * run one at a time per sandbox across every isolate and machine; a Worker that dies holding one
   * gives it up when it expires (the holder renews it while it works).
   */
  acquire(
    id: string,
    holder: string,
    operation: string,
    ttlMs: number,
  ): { granted: true } | { granted: false; operation: string; expiresInMs: number } {
    const now = Date.now();
    const row = this.ctx.storage.sql
      .exec<{ holder: string; operation: string; expires_at: number }>(
        'SELECT holder, operation, expires_at FROM leases WHERE id = ?',
        id,
      )
      .toArray()[0];
    if (row && row.holder !== holder && row.expires_at > now) {
      return { granted: false, operation: row.operation, expiresInMs: row.expires_at - now };
    }
    this.ctx.storage.sql.exec(
      'INSERT OR REPLACE INTO leases (id, holder, operation, expires_at) VALUES (?, ?, ?, ?)',
      id,
      holder,
      operation,
      now + ttlMs,
    );
    return { granted: true };
  }

  /** Extends a lease its holder still has; false if it expired and someone else took it. */
  renew(id: string, holder: string, ttlMs: number): boolean {
    this.ctx.storage.sql.exec(
      'UPDATE leases SET expires_at = ? WHERE id = ? AND holder = ?',
      Date.now() + ttlMs,
      id,
      holder,
    );
    return (
      this.ctx.storage.sql.exec('SELECT 1 FROM leases WHERE id = ? AND holder = ?', id, holder).toArray()
        .length > 0
    );
  }

  release(id: string, holder: string): void {
    this.ctx.storage.sql.exec('DELETE FROM leases WHERE id = ? AND holder = ?', id, holder);
  }

  insert(record: SandboxRecord): SandboxRecord {
    this.ctx.storage.sql.exec(
      'INSERT INTO sandboxes (id, status, labels, env, created_at, parent_id, workdir, backup) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
      record.id,
      record.status,
      JSON.stringify(record.labels),
      JSON.stringify(record.env),
      record.createdAt,
      record.parentId,
      record.workdir,
      record.backup ? JSON.stringify(record.backup) : null,
    );
    return record;
  }

  get(id: string): SandboxRecord | null {
    const rows = this.ctx.storage.sql.exec<Row>('SELECT * FROM sandboxes WHERE id = ?', id).toArray();
    return rows[0] ? toRecord(rows[0]) : null;
  }

  list(labels: Record<string, string>): SandboxRecord[] {
    const rows = this.ctx.storage.sql.exec<Row>('SELECT * FROM sandboxes ORDER BY created_at, id').toArray();
    return rows
      .map(toRecord)
      .filter((record) => Object.entries(labels).every(([key, value]) => record.labels[key] === value));
  }

  setStatus(id: string, status: SandboxRecord['status']): SandboxRecord | null {
    this.ctx.storage.sql.exec('UPDATE sandboxes SET status = ? WHERE id = ?', status, id);
    return this.get(id);
  }

  /**
   * Records a sandbox's new latest backup (and status). Returns the ids of backups no sandbox refers to
   * any more, which the caller deletes from R2.
   */
  setBackup(
    id: string,
    backup: BackupRecord,
    status?: SandboxRecord['status'],
  ): { record: SandboxRecord | null; orphans: BackupRecord[] } {
    const current = this.get(id);
    const previous = current?.backup;
    this.ctx.storage.sql.exec(
      'UPDATE sandboxes SET backup = ?, status = ? WHERE id = ?',
      JSON.stringify(backup),
      status ?? current?.status ?? 'running',
      id,
    );
    const orphans = previous && previous.id !== backup.id && !this.referenced(previous.id) ? [previous] : [];
    return { record: this.get(id), orphans };
  }

  /**
   * Registers a fork's child, and when the source's backup is fresh, records it as the source's latest,
   * in one step: a concurrent fork that replaces the source's backup then sees this child refer to the
   * one it replaced, and does not delete it from R2 while the child is restored from it.
   */
  insertFork(child: SandboxRecord, freshSourceBackup: boolean): { orphans: BackupRecord[] } {
    this.insert(child);
    if (!freshSourceBackup || !child.parentId || !child.backup) return { orphans: [] };
    return { orphans: this.setBackup(child.parentId, child.backup).orphans };
  }

  /** Forgets a sandbox; returns the backup ids nothing refers to any more. */
  remove(id: string): { removed: boolean; orphans: BackupRecord[] } {
    const record = this.get(id);
    if (!record) return { removed: false, orphans: [] };
    this.ctx.storage.sql.exec('DELETE FROM sandboxes WHERE id = ?', id);
    const orphans = record.backup && !this.referenced(record.backup.id) ? [record.backup] : [];
    return { removed: true, orphans };
  }

  private referenced(backupId: string): boolean {
    return this.ctx.storage.sql
      .exec<Row>('SELECT * FROM sandboxes WHERE backup IS NOT NULL')
      .toArray()
      .some((row) => (JSON.parse(row.backup!) as BackupRecord).id === backupId);
  }
}

function toRecord(row: Row): SandboxRecord {
  return {
    id: row.id,
    status: row.status as SandboxRecord['status'],
    labels: JSON.parse(row.labels) as Record<string, string>,
    env: JSON.parse(row.env) as Record<string, string>,
    createdAt: row.created_at,
    parentId: row.parent_id,
    workdir: row.workdir,
    backup: row.backup ? (JSON.parse(row.backup) as BackupRecord) : null,
  };
}

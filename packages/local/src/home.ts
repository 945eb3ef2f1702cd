import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ProviderError, TransientError } from '@statebox/core';
import { corruptRecordError, homeError, unreadableRecordError } from './errors.js';
import type { RunningInit } from './init.js';
import { lockFile, type Release } from './lock.js';

/**
 * The state directory. Everything a sandbox is lives here, so a sandbox suspended by one process is
 * resumed by another days later:
 *
 *   <home>/sandboxes/<id>/sandbox.json   the record (labels, layer chain, status, init pid)
 *   <home>/sandboxes/<id>/u-<n>/         the writable upper layer (workspace/, root/, tmp/)
 *   <home>/sandboxes/<id>/w-<n>/         overlayfs' work dir for that upper
 *   <home>/sandboxes/<id>/mnt/           mount point of the sandbox root (only inside its namespace)
 *   <home>/layers/<layerId>/             sealed, immutable layers shared by forks
 *   <home>/runtime/                      the root skeleton and minimal /etc every sandbox mounts
 *   <home>/locks/                        one lock file per sandbox, plus `layers` for layer GC
 *
 * Every change is made so that a process killed at any point leaves something the next operation (from
 * any process, under the sandbox's lock) finishes or undoes: records are replaced atomically, each
 * multi-step operation writes its intent into the record first (`creating`, `pendingFork`,
 * `pendingSeal`, `pendingCompact`), and directories under construction or deletion carry the id of the
 * sandbox whose lock their maker holds (`.building-<layer>-<sandbox>`, `.deleted-<sandbox>-<n>`), so
 * garbage collection can tell a dead maker's leftovers from work in progress.
 */

/** What `sandboxes/<id>/sandbox.json` holds. */
export type SandboxRecord = {
  version: 1;
  id: string;
  labels: Record<string, string>;
  env: Record<string, string>;
  createdAt: string;
  parentId?: string;
  status: 'running' | 'suspended';
  /** Whether the sandbox shares the host's network; fixed at creation and inherited by forks. */
  network: boolean;
  /** Sealed layer ids, top first. Empty for a sandbox that was never forked. */
  layers: string[];
  /** Name of the current upper dir inside the sandbox dir; its work dir is the same name with `w-`. */
  upper: string;
  /** The outer `unshare` process and the namespace's PID 1, with its start time to rule out PID reuse. */
  runtime?: RunningInit;
  /**
   * The last copy of the running upper layer made for a fork, with the upper's fingerprint then: while
   * the upper is unchanged, further forks reuse it instead of copying again.
   */
  liveCopy?: { layerId: string; fingerprint: string };
  /** The init of a suspend whose kernel teardown may still be running; waited for before the next mount. */
  teardown?: RunningInit;
  /**
   * The host uid that owns the sandbox's files (its commands' uid outside). Missing on sandboxes made
   * before commands ran unprivileged, whose files root owned; the next start hands those over.
   */
  owner?: number;
  /** A seal in progress, kept so a crash between its steps can be rolled forward or back. */
  pendingSeal?: { from: string; layerId: string; to: string };
  /**
   * Set while a create or fork makes this sandbox, and cleared by its last step: until then no caller
   * has its id. Found under the sandbox's lock (so its maker is gone), the sandbox is removed.
   */
  creating?: true;
  /**
   * A fork of this sandbox in progress: the child it makes, whether this sandbox ran before, and the
   * layer a live copy is being built into while this sandbox is frozen. Found under the lock, the fork
   * is rolled back: processes thawed, the child and any half-built layer removed, the status restored.
   */
  pendingFork?: { childId: string; wasRunning: boolean; layerId?: string; frozen?: boolean };
  /**
   * Set before an init is started and cleared when the record names it: found under the lock, it means
   * a start died in between and may have left an init that no record names, which is then stopped.
   */
  pendingStart?: true;
  /** A compaction building this layer; it is referenced (kept by GC) until the record uses it or drops it. */
  pendingCompact?: string;
};

/** Whether a record carries an operation that did not finish (its process died, or is still at work). */
export function hasIntent(record: SandboxRecord): boolean {
  return Boolean(
    record.creating ||
      record.pendingFork ||
      record.pendingSeal ||
      record.pendingCompact ||
      record.pendingStart,
  );
}

export class Home {
  readonly root: string;
  readonly sandboxesDir: string;
  readonly layersDir: string;
  readonly runtimeDir: string;
  readonly locksDir: string;

  constructor(root: string) {
    this.root = root;
    this.sandboxesDir = join(root, 'sandboxes');
    this.layersDir = join(root, 'layers');
    this.runtimeDir = join(root, 'runtime');
    this.locksDir = join(root, 'locks');
  }

  async ensure(): Promise<void> {
    try {
      await mkdir(this.root, { recursive: true, mode: 0o700 });
    } catch (error) {
      throw homeError(this.root, error);
    }
    await Promise.all(
      [this.sandboxesDir, this.layersDir, this.runtimeDir, this.locksDir].map((dir) =>
        mkdir(dir, { recursive: true, mode: 0o700 }),
      ),
    );
    await mkdir(join(this.layersDir, 'empty'), { recursive: true });
  }

  sandboxDir(id: string): string {
    return join(this.sandboxesDir, id);
  }

  recordPath(id: string): string {
    return join(this.sandboxDir(id), 'sandbox.json');
  }

  /**
   * The record, or undefined when the sandbox does not exist. Never guesses on a read error: a record
   * that is unreadable is a TransientError, one that is not a record is a ProviderError that says to
   * destroy the sandbox (destroy works without it).
   */
  async read(id: string, operation?: string): Promise<SandboxRecord | undefined> {
    if (!isValidId(id)) return undefined;
    let text: string;
    try {
      text = await readFile(this.recordPath(id), 'utf8');
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
      throw unreadableRecordError(id, operation, error);
    }
    let problem: string;
    try {
      const record = JSON.parse(text) as SandboxRecord;
      problem = recordProblem(record, id);
      if (!problem) return record;
    } catch (error) {
      problem = (error as Error).message;
    }
    throw corruptRecordError(id, operation, problem);
  }

  /** Writes the record atomically (temp file + rename), so a crash leaves the old or the new one. */
  async write(record: SandboxRecord): Promise<void> {
    const path = this.recordPath(record.id);
    const temporary = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    await writeFile(temporary, `${JSON.stringify(record, null, 2)}\n`, { mode: 0o600 });
    await rename(temporary, path);
  }

  async ids(): Promise<string[]> {
    const entries = await readdir(this.sandboxesDir).catch(() => [] as string[]);
    return entries.filter(isValidId);
  }

  /**
   * Takes the exclusive lock of a sandbox (or of `layers`), waiting up to `timeoutMs`. The kernel drops
   * it when its holder dies, so whoever holds a lock knows that every operation that held it before has
   * finished or died: an intent found in a record under the lock is always a leftover to repair.
   */
  async lock(name: string, timeoutMs = 30_000): Promise<Release> {
    const describe = name === 'layers' ? 'The layer store' : `Sandbox ${name}`;
    return (await lockFile(this.lockPath(name), timeoutMs, describe, isValidId(name) ? name : undefined))!;
  }

  /**
   * The lock if nobody holds it, else undefined (at once, or after `waitMs`: garbage collection waits a
   * little, so that a holder about to let go, such as the `flock` helper of a caller killed while it
   * locked, is not mistaken for a maker at work).
   */
  async tryLock(name: string, waitMs = 0): Promise<Release | undefined> {
    if (waitMs === 0) return lockFile(this.lockPath(name), 0, name);
    return lockFile(this.lockPath(name), waitMs, name).catch((error: unknown) => {
      if (TransientError.isInstance(error)) return undefined;
      throw error;
    });
  }

  lockPath(name: string): string {
    return join(this.locksDir, `${name}.lock`);
  }

  async exists(path: string): Promise<boolean> {
    return stat(path).then(
      () => true,
      () => false,
    );
  }
}

/**
 * New ids are `sb-<16 hex digits>`, as docker's; `sbx-…` ids of sandboxes made before stay valid, so
 * their state on disk keeps working.
 */
const idPattern = /^sbx?-[a-z0-9]{8,32}$/;

export function isValidId(id: string): boolean {
  return idPattern.test(id);
}

/** What makes a parsed record unusable, or '' when it is sound. */
function recordProblem(record: SandboxRecord, id: string): string {
  if (typeof record !== 'object' || record === null || Array.isArray(record)) return 'not a JSON object';
  if (record.id !== id) return `it names sandbox ${String(record.id)}`;
  if (!Array.isArray(record.layers) || record.layers.some((layer) => typeof layer !== 'string'))
    return 'its layer list is malformed';
  if (typeof record.upper !== 'string' || !/^u-[a-z0-9]+$/.test(record.upper))
    return 'its upper layer is malformed';
  if (record.status !== 'running' && record.status !== 'suspended') return 'its status is malformed';
  return '';
}

export function newSandboxId(): string {
  return `sb-${randomBytes(8).toString('hex')}`;
}

export function newLayerId(): string {
  return randomBytes(6).toString('hex');
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Field 22 of /proc/<pid>/stat: start time in clock ticks since boot, which identifies a process beyond
 * its pid. A zombie counts as gone: by then the kernel has killed everything in its PID namespace and
 * released its mounts, and only its parent's wait() is missing (which can take seconds when the parent is
 * the host's init).
 */
export function processStartTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces and parentheses; fields after it are plain.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (fields[0] === 'Z' || fields[0] === 'X') return null;
    return fields[19] ?? null;
  } catch {
    return null;
  }
}

/**
 * Removes a tree of any depth. Node's `rm` handles the usual case; it fails on paths past PATH_MAX
 * (ENAMETOOLONG: a sandbox can nest directories until its host path is longer than 4 KB) and, for a
 * non-root owner, on overlayfs' mode-000 `work/work` dir. Then `chmod -R` and `rm -rf` of coreutils,
 * which walk with directory descriptors and have no such limit.
 */
export async function removeTree(path: string): Promise<void> {
  try {
    await rm(path, { recursive: true, force: true });
    return;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'EACCES' && code !== 'EPERM' && code !== 'ENAMETOOLONG' && code !== 'ENOTEMPTY') throw error;
  }
  if (process.geteuid?.() !== 0) await runTool('chmod', ['-R', 'u+rwx', '--', path]).catch(() => undefined);
  // A dying writer (the `cp` of a killed fork, until its death signal lands) may still add an entry.
  for (let attempt = 1; ; attempt++) {
    try {
      await runTool('rm', ['-rf', '--one-file-system', '--', path]);
      return;
    } catch (error) {
      if (attempt === 3) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50 * attempt));
    }
  }
}

/** Runs a coreutils tool; rejects with a ProviderError carrying the first line of its stderr. */
function runTool(tool: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(tool, args, {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { PATH: '/usr/bin:/bin', LC_ALL: 'C' },
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      if (stderr.length < 4096) stderr += chunk.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve();
      // Deep paths make long messages: keep the reason, not the path.
      else reject(new ProviderError('local', `${tool} failed: ${shortReason(stderr) || `exit ${code}`}`));
    });
  });
}

/** The reason at the end of a coreutils message (`cp: cannot stat '<4 KB path>': File name too long`). */
export function shortReason(stderr: string): string {
  const line = stderr.trim().split('\n')[0] ?? '';
  const reason = line.slice(line.lastIndexOf(': ') + 2);
  return reason.length > 200 ? `${reason.slice(0, 200)}…` : reason;
}

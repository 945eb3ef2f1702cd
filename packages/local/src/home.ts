import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { chmod, mkdir, open, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, ProviderError, TransientError } from '@statebox/core';
import type { RunningInit } from './isolation.js';

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
 */
export function defaultHome(env: NodeJS.ProcessEnv = process.env): string {
  if (env.STATEBOX_HOME) return env.STATEBOX_HOME;
  const data = env.XDG_DATA_HOME || join(homedir(), '.local', 'share');
  return join(data, 'statebox');
}

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
};

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
      const code = (error as NodeJS.ErrnoException).code;
      throw new ConfigError(
        'home',
        code === 'EEXIST' || code === 'ENOTDIR'
          ? `The local provider's home ${this.root} (or a parent of it) is a file, not a directory. ` +
              'Point home (or STATEBOX_HOME) at a directory, or at a path that does not exist yet.'
          : `The local provider cannot create its home ${this.root}: ${(error as Error).message}. ` +
              'Point home (or STATEBOX_HOME) at a writable directory.',
        { cause: error },
      );
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

  /** The record, or undefined when the sandbox does not exist. Never guesses on a read error. */
  async read(id: string): Promise<SandboxRecord | undefined> {
    if (!isValidId(id)) return undefined;
    let text: string;
    try {
      text = await readFile(this.recordPath(id), 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new TransientError(`Could not read the record of sandbox ${id}: ${(error as Error).message}`, {
        sandboxId: id,
        cause: error,
      });
    }
    try {
      return JSON.parse(text) as SandboxRecord;
    } catch (error) {
      throw new ProviderError(
        'local',
        `The record of sandbox ${id} at ${this.recordPath(id)} is corrupt (${(error as Error).message}). ` +
          'Inspect it, or destroy the sandbox to reclaim its space.',
        { sandboxId: id, cause: error },
      );
    }
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
   * Takes an exclusive lock (a file created with O_EXCL holding our pid and start time). A lock whose
   * holder has died is taken over, so a crashed process never wedges a sandbox.
   */
  async lock(name: string, timeoutMs = 30_000): Promise<() => Promise<void>> {
    const path = join(this.locksDir, `${name}.lock`);
    const token = `${process.pid} ${processStartTime(process.pid) ?? ''}\n`;
    const deadline = Date.now() + timeoutMs;
    for (let delay = 2; ; delay = Math.min(delay * 2, 50)) {
      try {
        const handle = await open(path, 'wx', 0o600);
        await handle.writeFile(token);
        await handle.close();
        return async () => {
          await rm(path, { force: true });
        };
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      const holder = await readFile(path, 'utf8').catch(() => '');
      const [pidText, startTime] = holder.trim().split(' ');
      const pid = Number(pidText);
      const stale =
        holder !== '' &&
        (!Number.isInteger(pid) || !isAlive(pid) || processStartTime(pid) !== (startTime ?? null));
      if (stale) {
        // Take over by renaming: only one contender wins the rename of this exact content.
        const grave = `${path}.stale.${process.pid}`;
        await rename(path, grave).catch(() => undefined);
        await rm(grave, { force: true });
        continue;
      }
      if (Date.now() > deadline) {
        throw new TransientError(
          `Sandbox state '${name}' is locked by process ${pidText} for more than ${timeoutMs} ms. ` +
            'Another statebox operation is running on it; retry when it finishes.',
        );
      }
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }

  async exists(path: string): Promise<boolean> {
    return stat(path).then(
      () => true,
      () => false,
    );
  }
}

const idPattern = /^sbx-[a-z0-9]{8,32}$/;

export function isValidId(id: string): boolean {
  return idPattern.test(id);
}

export function newSandboxId(): string {
  return `sbx-${randomBytes(8).toString('hex')}`;
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
 * `rm -rf` that also removes what overlayfs leaves unreadable: its `work/work` dir is mode 000, which a
 * non-root owner cannot list until it makes it readable again.
 */
export async function removeTree(path: string): Promise<void> {
  try {
    await rm(path, { recursive: true, force: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EACCES') throw error;
    await makeWritable(path);
    await rm(path, { recursive: true, force: true });
  }
}

async function makeWritable(path: string): Promise<void> {
  const info = await stat(path).catch(() => undefined);
  if (!info?.isDirectory()) return;
  await chmod(path, 0o700).catch(() => undefined);
  for (const entry of await readdir(path).catch(() => [] as string[])) await makeWritable(`${path}/${entry}`);
}

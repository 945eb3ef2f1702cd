import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { type FileHandle, mkdir, open, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ProviderError, TransientError } from '@statebox/core';

/**
 * Kernel-held locks on files, shared by every process that uses the same directory.
 *
 * A lock is `flock(2)` on an open file description: the kernel releases it when its holder dies,
 * however it dies, so a crashed process never wedges anyone, and no pid, start time or timestamp has to
 * be trusted (a reused pid cannot make a dead holder look alive; a file holding the holder's pid was once
 * left empty by a kill between its creation and the write, and was never taken over). Node has no
 * `flock`, so util-linux `flock` takes it on the descriptor we pass it as fd 3, which we keep open; it
 * costs one short process, about 2 ms here. (`proper-lockfile` took 0.5 ms, but it judges a holder dead
 * by an mtime it refreshes: a killed holder blocked everyone for its 10 s stale time, and a holder whose
 * event loop stalls longer loses the lock while it still works. A long-lived `flock <file> cat` child
 * per lock, the other design tried here, drops the lock when its pipe closes, but a contender that
 * waited on a file its holder then unlinked held a lock on a file nobody else could see.)
 *
 * A lock file is never emptied or replaced while in use; `release({ remove: true })` unlinks it while
 * still holding it, and a contender that then wins the now unlinked file sees that and retries.
 */

export type Release = (options?: { remove?: boolean }) => Promise<void>;

const searchPath = ['/usr/bin', '/bin', '/usr/sbin', '/sbin', '/usr/local/bin'];
let flockPath: string | undefined;

function flockBinary(provider: string): string {
  flockPath ??= searchPath.map((dir) => `${dir}/flock`).find((path) => existsSync(path));
  if (!flockPath) {
    throw new ProviderError(
      provider,
      `The ${provider} provider needs flock from util-linux to lock sandbox state, and it is not installed. ` +
        'Install util-linux (apt-get install util-linux / dnf install util-linux).',
    );
  }
  return flockPath;
}

/** Runs `flock <args> 3` on our descriptor; resolves with its exit code (1: not acquired in time). */
function flockDescriptor(fd: number, args: string[], provider: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(flockBinary(provider), [...args, '3'], {
      stdio: ['ignore', 'ignore', 'pipe', fd],
      env: { PATH: '/usr/bin:/bin', LC_ALL: 'C' },
    });
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0 || code === 1) resolve(code);
      else reject(new ProviderError(provider, `flock failed: ${stderr.trim() || `exit ${code}`}`));
    });
  });
}

/**
 * Takes the lock at `path` (creating the file). With `waitMs`, waits up to that long and then throws a
 * `TransientError` that names the holder; with `waitMs: 0`, returns undefined at once when someone holds
 * it. `describe` names what is locked in that message (`sandbox sbx-…`).
 */
export async function lockFile(
  path: string,
  waitMs: number,
  describe: string,
  sandboxId?: string,
  provider = 'statebox',
): Promise<Release | undefined> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const handle = await open(path, 'a+', 0o600);
    let acquired = false;
    try {
      const remaining = Math.max(0, deadline - Date.now());
      const args =
        waitMs === 0 ? ['--exclusive', '--nonblock'] : ['--exclusive', '--timeout', seconds(remaining)];
      if ((await flockDescriptor(handle.fd, args, provider)) !== 0) {
        if (waitMs === 0) return undefined;
        const holder = (await readFile(path, 'utf8').catch(() => '')).trim();
        throw new TransientError(
          `${describe} is locked${holder ? ` by process ${holder}` : ''} for more than ${waitMs} ms: another ` +
            'statebox operation is running on it. Retry when it finishes.',
          { ...(sandboxId && { sandboxId }) },
        );
      }
      if (!(await isLinkedAt(handle, path))) continue;
      acquired = true;
      // For the message above only: nothing trusts this content.
      await handle.truncate(0);
      await handle.write(`${process.pid}\n`, 0);
      return release(handle, path);
    } finally {
      if (!acquired) await handle.close();
    }
  }
}

/** Whether the file we locked is still the one at `path` (a holder may have unlinked it meanwhile). */
async function isLinkedAt(handle: FileHandle, path: string): Promise<boolean> {
  const [mine, current] = await Promise.all([handle.stat(), stat(path).catch(() => undefined)]);
  return current !== undefined && current.ino === mine.ino && current.dev === mine.dev;
}

function release(handle: FileHandle, path: string): Release {
  let released = false;
  return async (options = {}) => {
    if (released) return;
    released = true;
    try {
      if (options.remove) await rm(path, { force: true });
    } finally {
      // Closing the last descriptor of the open file releases the lock.
      await handle.close();
    }
  };
}

function seconds(ms: number): string {
  return (Math.max(ms, 1) / 1000).toFixed(3);
}

/**
 * One `lockFile` per key (`<directory>/<key>.lock`), with the operations of this process on one key
 * queued in a promise chain before they contend for the file, so `busy` and `idle` can tell whether this
 * process is inside one.
 */
export class KeyedLocks {
  readonly #directory: string;
  readonly #waitMs: number;
  readonly #provider: string;
  readonly #chains = new Map<string, Promise<unknown>>();
  /** Keys whose lock this process holds now, and whether to unlink the file on release. */
  readonly #held = new Map<string, { remove: boolean }>();

  constructor(directory: string, options: { waitMs?: number; provider?: string } = {}) {
    this.#directory = directory;
    this.#waitMs = options.waitMs ?? 5 * 60_000;
    this.#provider = options.provider ?? 'statebox';
  }

  path(key: string): string {
    return join(this.#directory, `${key}.lock`);
  }

  /** Resolves when this process has no locked operation on the key running or queued. */
  async idle(key: string): Promise<void> {
    for (let chain = this.#chains.get(key); chain; chain = this.#chains.get(key)) {
      await chain.catch(() => undefined);
    }
  }

  /** Whether this process is inside (or queued for) a locked operation on the key. */
  busy(key: string): boolean {
    return this.#chains.has(key);
  }

  /**
   * Runs `task` holding the key's lock. Waiting longer than `waitMs` for another process rejects with a
   * `TransientError` (with `sandboxId` = the key).
   */
  async run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.#chains.get(key) ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(() => this.#withFile(key, task));
    this.#chains.set(key, next);
    try {
      return await next;
    } finally {
      if (this.#chains.get(key) === next) this.#chains.delete(key);
    }
  }

  /**
   * Removes the key's lock file (a destroyed sandbox's). Inside `run` on that key, the file is unlinked
   * at release while still held, so a waiter finds it gone and locks a fresh one instead of a file
   * nobody else sees; outside, the lock is taken first.
   */
  async forget(key: string): Promise<void> {
    const held = this.#held.get(key);
    if (held) {
      held.remove = true;
      return;
    }
    const release = await lockFile(this.path(key), this.#waitMs, `sandbox ${key}`, key, this.#provider);
    await release!({ remove: true });
  }

  async #withFile<T>(key: string, task: () => Promise<T>): Promise<T> {
    await mkdir(this.#directory, { recursive: true });
    const release = await lockFile(this.path(key), this.#waitMs, `sandbox ${key}`, key, this.#provider);
    const state = { remove: false };
    this.#held.set(key, state);
    try {
      return await task();
    } finally {
      this.#held.delete(key);
      await release!({ remove: state.remove });
    }
  }
}

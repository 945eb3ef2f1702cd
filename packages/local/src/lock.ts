import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { type FileHandle, open, readFile, rm, stat } from 'node:fs/promises';
import { ProviderError, TransientError } from '@statebox/core';

/**
 * Kernel-held locks on files in the state directory, shared by every process that uses it.
 *
 * A lock is `flock(2)` on an open file description: the kernel releases it when its holder dies,
 * however it dies, so a crashed process never wedges a sandbox, and no pid, start time or timestamp has
 * to be trusted (a file holding the holder's pid was left empty by a kill between its creation and the
 * write, and was never taken over). Node has no `flock`, so util-linux `flock` takes it on the
 * descriptor we pass it as fd 3, which we keep open; it costs one short process, about 2 ms here.
 * (`proper-lockfile` took 0.5 ms, but it judges a holder dead by an mtime it refreshes: a killed
 * holder blocked everyone for its 10 s stale time, and a holder whose event loop stalls longer loses
 * the lock while it still works.)
 *
 * A lock file is never emptied or replaced while in use; `release({ remove: true })` unlinks it while
 * still holding it, and a contender that then wins the now unlinked file sees that and retries.
 */

export type Release = (options?: { remove?: boolean }) => Promise<void>;

const searchPath = ['/usr/bin', '/bin', '/usr/sbin', '/sbin', '/usr/local/bin'];
let flockPath: string | undefined;

function flockBinary(): string {
  flockPath ??= searchPath.map((dir) => `${dir}/flock`).find((path) => existsSync(path));
  if (!flockPath) {
    throw new ProviderError(
      'local',
      'The local provider needs flock from util-linux to lock sandbox state, and it is not installed. ' +
        'Install util-linux (apt-get install util-linux / dnf install util-linux).',
    );
  }
  return flockPath;
}

/** Runs `flock <args> 3` on our descriptor; resolves with its exit code (1: not acquired in time). */
function flockDescriptor(fd: number, args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(flockBinary(), [...args, '3'], {
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
      else reject(new ProviderError('local', `flock failed: ${stderr.trim() || `exit ${code}`}`));
    });
  });
}

/**
 * Takes the lock at `path`. With `waitMs`, waits up to that long and then throws a TransientError that
 * names the holder; with `waitMs: 0`, returns undefined at once when someone holds it.
 */
export async function lockFile(
  path: string,
  waitMs: number,
  describe: string,
  sandboxId?: string,
): Promise<Release | undefined> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const handle = await open(path, 'a+', 0o600);
    let acquired = false;
    try {
      const remaining = Math.max(0, deadline - Date.now());
      const args =
        waitMs === 0 ? ['--exclusive', '--nonblock'] : ['--exclusive', '--timeout', seconds(remaining)];
      if ((await flockDescriptor(handle.fd, args)) !== 0) {
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

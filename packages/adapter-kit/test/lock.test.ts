import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { TransientError } from '@statebox/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeyedLocks, lockFile } from '../src/lock.js';

// Each lock under test is held by a real other process (test/fixtures/lock-holder.mjs on the built kit),
// so what is proved is the kernel's flock across processes, not a map in this one.
const holderScript = new URL('./fixtures/lock-holder.mjs', import.meta.url).pathname;
let directory: string;
const children: ChildProcess[] = [];

beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), 'adapter-kit-lock-'));
});
afterAll(async () => {
  for (const child of children) child.kill('SIGKILL');
  await rm(directory, { recursive: true, force: true });
});

type Holder = { child: ChildProcess; first: string; next: () => Promise<string> };

/** Starts a holder process and waits for its first line (`locked <pid>`, `busy` or `error …`). */
async function holder(path: string, waitMs: number): Promise<Holder> {
  const child = spawn(process.execPath, [holderScript, path, String(waitMs)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  children.push(child);
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const next = async () => {
    const { value, done } = await lines.next();
    if (done) throw new Error('the holder process exited without a word');
    return value as string;
  };
  return { child, first: await next(), next };
}

const exited = (child: ChildProcess) =>
  child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve()
    : new Promise<void>((resolve) => child.once('exit', () => resolve()));

describe('lockFile', () => {
  it('excludes another process, and is free again once that process releases it', async () => {
    const path = join(directory, 'plain.lock');
    const other = await holder(path, 5000);
    expect(other.first).toBe(`locked ${other.child.pid}`);
    expect(await lockFile(path, 0, 'plain')).toBeUndefined();
    other.child.stdin!.write('release\n');
    expect(await other.next()).toBe('released');
    const release = await lockFile(path, 0, 'plain');
    expect(release).toBeTypeOf('function');
    await release!();
  });

  it('a waiter gets the lock as soon as the holder lets go', async () => {
    const path = join(directory, 'waiter.lock');
    const other = await holder(path, 5000);
    const waiting = lockFile(path, 30_000, 'waiter');
    await new Promise((resolve) => setTimeout(resolve, 200));
    other.child.stdin!.write('release\n');
    const release = await waiting;
    expect(release).toBeTypeOf('function');
    // Now held here: another process cannot have it.
    expect((await holder(path, 0)).first).toBe('busy');
    await release!();
  });

  it('survives a holder killed with SIGKILL: the kernel drops its lock, no stale state is left', async () => {
    const path = join(directory, 'killed.lock');
    const other = await holder(path, 5000);
    expect(other.first).toBe(`locked ${other.child.pid}`);
    const waiting = lockFile(path, 30_000, 'killed');
    other.child.kill('SIGKILL');
    await exited(other.child);
    const release = await waiting;
    expect(release).toBeTypeOf('function');
    await release!();
  });

  it('trusts no pid: a file naming a live process (pid reuse) or holding garbage is not a held lock', async () => {
    const path = join(directory, 'reused.lock');
    // Our own pid and init's: both alive, neither holds the lock.
    await writeFile(path, `${process.pid}\n1\n`);
    const release = await lockFile(path, 0, 'reused');
    expect(release).toBeTypeOf('function');
    expect(await readFile(path, 'utf8')).toBe(`${process.pid}\n`);
    await release!();
    await writeFile(path, '');
    const again = await lockFile(path, 0, 'reused');
    expect(again).toBeTypeOf('function');
    await again!();
  });

  it('waiting too long throws a TransientError that names what is locked and by whom', async () => {
    const path = join(directory, 'slow.lock');
    const other = await holder(path, 5000);
    const error = await lockFile(path, 300, 'sandbox sbx-slow', 'sbx-slow').catch(
      (caught: unknown) => caught,
    );
    expect(TransientError.isInstance(error)).toBe(true);
    expect((error as TransientError).sandboxId).toBe('sbx-slow');
    expect((error as Error).message).toContain(`sandbox sbx-slow is locked by process ${other.child.pid}`);
    expect((error as Error).message).toContain('Retry when it finishes');
    other.child.stdin!.write('release\n');
    expect(await other.next()).toBe('released');
  });

  it('a holder that unlinks the file on release sends its waiter to a fresh file, never to a lost one', async () => {
    const path = join(directory, 'removed.lock');
    const other = await holder(path, 5000);
    const waiting = lockFile(path, 30_000, 'removed');
    await new Promise((resolve) => setTimeout(resolve, 200));
    other.child.stdin!.write('remove\n');
    const release = await waiting;
    // The waiter holds the file now at the path: a third process must see it held.
    const mine = await stat(path);
    expect((await holder(path, 0)).first).toBe('busy');
    expect((await stat(path)).ino).toBe(mine.ino);
    await release!({ remove: true });
    await expect(stat(path)).rejects.toThrow(/ENOENT/);
  });
});

describe('KeyedLocks', () => {
  it('queues this process’s operations on one key and runs other keys at once', async () => {
    const locks = new KeyedLocks(join(directory, 'keyed'));
    const order: string[] = [];
    const task = (name: string, ms: number) => async () => {
      order.push(`${name} start`);
      await new Promise((resolve) => setTimeout(resolve, ms));
      order.push(`${name} end`);
      return name;
    };
    const first = locks.run('a', task('a1', 150));
    const second = locks.run('a', task('a2', 10));
    const other = locks.run('b', task('b1', 10));
    expect(locks.busy('a')).toBe(true);
    expect(await Promise.all([first, second, other])).toEqual(['a1', 'a2', 'b1']);
    expect(order.indexOf('a1 end')).toBeLessThan(order.indexOf('a2 start'));
    expect(order.indexOf('b1 end')).toBeLessThan(order.indexOf('a1 end'));
    await locks.idle('a');
    expect(locks.busy('a')).toBe(false);
  });

  it('excludes another process holding the same key, and times out with a TransientError', async () => {
    const locks = new KeyedLocks(join(directory, 'keyed'), { waitMs: 300 });
    const other = await holder(locks.path('sbx-busy'), 5000);
    expect(other.first).toBe(`locked ${other.child.pid}`);
    const error = await locks.run('sbx-busy', async () => 'ran').catch((caught: unknown) => caught);
    expect(TransientError.isInstance(error)).toBe(true);
    expect((error as TransientError).sandboxId).toBe('sbx-busy');
    other.child.kill('SIGKILL');
    await exited(other.child);
    expect(await locks.run('sbx-busy', async () => 'ran')).toBe('ran');
  });

  it('forget inside an operation unlinks the file at release, while still holding it', async () => {
    const locks = new KeyedLocks(join(directory, 'keyed'));
    await locks.run('sbx-gone', async () => {
      await locks.forget('sbx-gone');
      // Still held until the operation ends.
      expect((await holder(locks.path('sbx-gone'), 0)).first).toBe('busy');
    });
    await expect(stat(locks.path('sbx-gone'))).rejects.toThrow(/ENOENT/);
    await locks.run('sbx-kept', async () => undefined);
    await locks.forget('sbx-kept');
    await expect(stat(locks.path('sbx-kept'))).rejects.toThrow(/ENOENT/);
  });
});

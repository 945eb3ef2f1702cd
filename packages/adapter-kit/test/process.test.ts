import { readFile } from 'node:fs/promises';
import { TimeoutError } from '@statebox/core';
import { describe, expect, it } from 'vitest';
import { truncationMarker } from '../src/output.js';
import { runProcess } from '../src/process.js';

const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
const env = { PATH: '/usr/bin:/bin' };
const base = { env, maxOutputBytes: 1 << 20, sandboxId: 'sbx-test', operation: 'exec' };
const sh = (script: string, extra: Partial<Parameters<typeof runProcess>[0]> = {}) =>
  runProcess({ ...base, file: 'sh', args: ['-c', script], ...extra });

async function alive(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  return stat !== '' && !/^[ZX]/.test(stat.slice(stat.lastIndexOf(')') + 2));
}

async function eventuallyDead(pid: number): Promise<void> {
  for (let attempt = 0; attempt < 200 && (await alive(pid)); attempt++) {
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  expect(await alive(pid), `process ${pid} is still alive`).toBe(false);
}

describe('runProcess', () => {
  it('returns the exit code and both streams, and feeds stdin', async () => {
    const output = await sh('cat; echo oops >&2; exit 3', { stdin: new TextEncoder().encode('in\0put') });
    expect(output.exitCode).toBe(3);
    expect(decode(output.stdout)).toBe('in\0put');
    expect(decode(output.stderr)).toBe('oops\n');
    expect(output.truncated).toEqual({ stdout: false, stderr: false });
  });

  it('streams chunks to the callbacks as they come, and caps what it keeps', async () => {
    const seen: string[] = [];
    const output = await sh('printf 0123456789; printf abcdefghij; printf ABCDE', {
      maxOutputBytes: 10,
      onStdout: (chunk) => seen.push(decode(chunk)),
    });
    expect(seen.join('')).toBe('0123456789abcdefghijABCDE');
    expect(decode(output.stdout)).toBe(`01234${truncationMarker(15)}ABCDE`);
    expect(output.truncated.stdout).toBe(true);
  });

  it('reports a death by signal as 128 + its number', async () => {
    expect((await sh('kill -TERM $$')).exitCode).toBe(128 + 15);
  });

  it('on timeout kills the whole tree and throws TimeoutError with the output so far', async () => {
    const error = await sh('echo before; sleep 300 & echo $! >&2; wait', { timeoutMs: 500 }).catch(
      (caught: unknown) => caught,
    );
    expect(TimeoutError.isInstance(error)).toBe(true);
    const timeout = error as TimeoutError;
    expect(timeout.sandboxId).toBe('sbx-test');
    expect(timeout.timeoutMs).toBe(500);
    expect(decode(timeout.stdout)).toBe('before\n');
    await eventuallyDead(Number(decode(timeout.stderr).trim()));
  });

  it('on abort kills the tree, also a member that started its own session, and rejects with the reason', async () => {
    const controller = new AbortController();
    const pids: number[] = [];
    const running = sh("setsid sh -c 'sleep 300 & echo $!; wait' & sleep 301 & echo $!; wait", {
      signal: controller.signal,
      onStdout: (chunk) => {
        pids.push(...decode(chunk).trim().split('\n').map(Number));
        if (pids.length >= 2) controller.abort(new Error('stopped by the test'));
      },
    });
    await expect(running).rejects.toThrow('stopped by the test');
    for (const pid of pids) await eventuallyDead(pid);
  });

  it('rejects at once when the signal is already aborted, and when the file cannot start', async () => {
    await expect(sh('echo no', { signal: AbortSignal.abort(new Error('early')) })).rejects.toThrow('early');
    await expect(runProcess({ ...base, file: '/nonexistent/tool', args: [] })).rejects.toThrow(/ENOENT/);
  });
});

import { execFileSync } from 'node:child_process';
import { InvalidStateError, ProviderError, TimeoutError } from '@statebox/core';
import { describe, expect, it } from 'vitest';
import { DEFAULT_LIMITS } from '../src/index.js';
import { exec, inspect, run, skip, useSandboxes } from './helpers.js';

const { provider, created } = useSandboxes();

/** A file of the container's pids cgroup, read on the host (cgroup v1, as here). */
function pidsFile(sandboxId: string, file: string): string {
  const id = inspect(sandboxId).Id as string;
  return execFileSync('cat', [`/sys/fs/cgroup/pids/docker/${id}/${file}`], { encoding: 'utf8' });
}

function processCount(sandboxId: string): number {
  return Number(pidsFile(sandboxId, 'pids.current'));
}

describe.skipIf(Boolean(skip))(
  `docker resource limits and exec bounds${skip ? ` (skipped: ${skip})` : ''}`,
  () => {
    it('a new sandbox has the documented default limits', async () => {
      const instance = provider();
      const info = await instance.create({});
      created.push(info.id);
      const host = inspect(info.id).HostConfig;
      expect(host.PidsLimit).toBe(DEFAULT_LIMITS.pidsLimit);
      expect(host.Memory).toBe(DEFAULT_LIMITS.memoryBytes);
      expect(host.MemorySwap).toBe(DEFAULT_LIMITS.memoryBytes);
      expect(host.ShmSize).toBe(DEFAULT_LIMITS.shmBytes);
      // A fork keeps the source's limits, in the child and in the source's replacement.
      const child = await instance.fork(info.id);
      created.push(child.id);
      for (const id of [info.id, child.id])
        expect(inspect(id).HostConfig.PidsLimit).toBe(DEFAULT_LIMITS.pidsLimit);
    });

    it('a fork bomb stops at pidsLimit, its timeout ends all of it, and the sandbox works after', async () => {
      const instance = provider({ pidsLimit: 64 });
      const info = await instance.create({});
      created.push(info.id);
      // Settled into a value at once: on a loaded host the timeout can fire before the sampling below
      // ends, and a rejection nobody awaits yet is reported as unhandled.
      const bomb = instance
        .exec(info.id, {
          command: 'bomb() { bomb | bomb & }; bomb; sleep 30',
          cwd: '/workspace',
          maxOutputBytes: 1 << 16,
          timeoutMs: 4000,
        })
        .then(
          (output) => output,
          (error: unknown) => error,
        );
      let peak = 0;
      for (let sample = 0; sample < 25; sample++) {
        peak = Math.max(peak, processCount(info.id));
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expect(peak).toBeLessThanOrEqual(64);
      // The kernel refused forks at the limit.
      expect(Number(/max (\d+)/.exec(pidsFile(info.id, 'pids.events'))?.[1])).toBeGreaterThan(0);
      expect(await bomb).toSatisfy(TimeoutError.isInstance);
      // Everything the bomb made is gone: the sleeper init and nothing else.
      for (let attempt = 0; attempt < 50 && processCount(info.id) > 2; attempt++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expect(processCount(info.id)).toBeLessThanOrEqual(2);
      expect(await run(instance, info.id, 'echo alive')).toBe('alive\n');
    });

    it('a command over memoryBytes is OOM-killed (exit 137); the sandbox stays up', async () => {
      const instance = provider({ memoryBytes: 64 * 1024 ** 2 });
      const info = await instance.create({});
      created.push(info.id);
      // A command substitution holds its whole output in the shell's memory: 256 MiB.
      const output = await exec(
        instance,
        info.id,
        'x=$(head -c 268435456 /dev/zero | tr "\\0" a); echo "$x" | wc -c',
      );
      expect(output.exitCode).toBe(137);
      expect(await run(instance, info.id, 'echo alive')).toBe('alive\n');
    });

    it('/dev/shm is shmBytes large, and writing past it fails', async () => {
      const instance = provider({ shmBytes: 8 * 1024 ** 2 });
      const info = await instance.create({});
      created.push(info.id);
      expect(await run(instance, info.id, "df -k /dev/shm | awk 'NR==2 {print $2}'")).toBe('8192\n');
      const output = await exec(instance, info.id, 'head -c 16777216 /dev/zero > /dev/shm/fill');
      expect(output.exitCode).not.toBe(0);
      expect(Number(await run(instance, info.id, 'stat -c %s /dev/shm/fill'))).toBeLessThanOrEqual(
        8 * 1024 ** 2,
      );
    });

    it('diskBytes needs overlay2 on xfs with pquota: elsewhere create fails saying so, and creates nothing', async () => {
      const info = JSON.parse(
        execFileSync('docker', ['info', '--format', '{{json .}}'], { encoding: 'utf8' }),
      );
      const backing = (info.DriverStatus as [string, string][]).find(
        ([key]) => key === 'Backing Filesystem',
      )?.[1];
      const instance = provider({ diskBytes: 64 * 1024 ** 2 });
      if (info.Driver === 'overlay2' && backing === 'xfs') {
        const sandbox = await instance.create({});
        created.push(sandbox.id);
        const output = await exec(instance, sandbox.id, 'head -c 134217728 /dev/zero > /root/fill');
        expect(output.exitCode).not.toBe(0);
        return;
      }
      const before = execFileSync('docker', ['ps', '-aq'], { encoding: 'utf8' });
      const error = await instance.create({}).catch((caught: unknown) => caught);
      expect(ProviderError.isInstance(error)).toBe(true);
      expect((error as Error).message).toMatch(/diskBytes/);
      expect((error as Error).message).toMatch(/xfs/);
      expect((error as Error).message).toContain(String(backing));
      expect(execFileSync('docker', ['ps', '-aq'], { encoding: 'utf8' })).toBe(before);
    });

    it('a timeout ends a double-forked setsid daemon too, and what it started in the background', async () => {
      const instance = provider();
      const info = await instance.create({});
      created.push(info.id);
      const started = Date.now();
      const error = await instance
        .exec(info.id, {
          command: '(setsid sh -c "sleep 3005 & sleep 3006" >/dev/null 2>&1 &); sleep 3007 & sleep 60',
          cwd: '/workspace',
          maxOutputBytes: 1024,
          timeoutMs: 1500,
        })
        .catch((caught: unknown) => caught);
      expect(TimeoutError.isInstance(error)).toBe(true);
      expect(Date.now() - started).toBeLessThan(10_000);
      expect(await run(instance, info.id, 'ps -o args')).not.toMatch(/sleep 300[567]|sleep 60/);
    });

    it('an abort ends a daemon that cleared its environment and left the process tree', async () => {
      const instance = provider();
      const info = await instance.create({});
      created.push(info.id);
      const controller = new AbortController();
      const pending = instance.exec(info.id, {
        command: '(env -i setsid sleep 3008 >/dev/null 2>&1 &); sleep 60',
        cwd: '/workspace',
        maxOutputBytes: 1024,
        signal: controller.signal,
      });
      await new Promise((resolve) => setTimeout(resolve, 700));
      expect(await run(instance, info.id, 'ps -o args')).toMatch(/sleep 3008/);
      controller.abort(new Error('stop it'));
      await expect(pending).rejects.toThrow('stop it');
      expect(await run(instance, info.id, 'ps -o args')).not.toMatch(/sleep 3008|sleep 60/);
    });

    it('a background daemon of an exec that ended by itself keeps running (until suspend)', async () => {
      const instance = provider();
      const info = await instance.create({});
      created.push(info.id);
      await run(instance, info.id, 'setsid sleep 3009 >/dev/null 2>&1 &');
      expect(await run(instance, info.id, 'ps -o args')).toMatch(/sleep 3009/);
    });

    it('an exec running when its sandbox is suspended, forked or destroyed rejects with InvalidStateError', async () => {
      const instance = provider();
      for (const interrupt of ['suspend', 'fork', 'destroy'] as const) {
        const info = await instance.create({});
        created.push(info.id);
        const pending = instance
          .exec(info.id, { command: 'sleep 30', cwd: '/workspace', maxOutputBytes: 1024 })
          .catch((caught: unknown) => caught);
        await new Promise((resolve) => setTimeout(resolve, 500));
        if (interrupt === 'fork') {
          // Another provider instance: the fork does not wait for this one's exec.
          const other = provider();
          created.push((await other.fork(info.id)).id);
        } else {
          await provider()[interrupt](info.id);
        }
        const error = await pending;
        expect(InvalidStateError.isInstance(error), `${interrupt}: ${String(error)}`).toBe(true);
        expect((error as Error).message).toContain(info.id);
      }
    });
  },
);

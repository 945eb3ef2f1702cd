import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createStatebox,
  InvalidStateError,
  ProviderError,
  type Sandbox,
  SandboxNotFoundError,
  StateboxError,
  TransientError,
} from '@statebox/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { freezeSandbox } from '../src/freeze.js';
import { Home, type SandboxRecord } from '../src/home.js';
import { local } from '../src/index.js';
import { namespaceProcesses, pidNamespace, readProcess } from '../src/procfs.js';
import { freezerSkipReason, localSuiteSkip } from '../src/testing.js';
import {
  destroyAll,
  leftovers,
  manifest,
  settle,
  sleep,
  startWorker,
  stoppedProcesses,
  supervisors,
} from './crash-support.js';

/** Local sandboxes need Linux namespaces and overlayfs: each suite here is skipped, with the reason, without them. */
const skip = localSuiteSkip();
const skipped = skip ? ` (skipped: ${skip})` : '';

/**
 * One test per failure of issue 7's crash and concurrency findings, each reproducing it first: a lock
 * left empty or held by a reused pid, a fork killed while its source is frozen or stopped for sealing,
 * a corrupt record, a tree deeper than PATH_MAX, exec racing suspend, and an exec whose nsenter a
 * freeze stopped.
 */

let home: string;
const statebox = () => createStatebox({ provider: local({ home }) });

// A home per test: each one ends by checking that destroying its sandboxes leaves nothing behind.
beforeEach(async () => {
  home = await mkdtemp(join(tmpdir(), 'statebox-repair-'));
});

afterEach(async () => {
  await destroyAll(statebox()).catch(() => undefined);
  await rm(home, { recursive: true, force: true });
});

/** Whether an init is gone: exited, or a zombie whose namespace the kernel has already torn down. */
function isGone(runtime: NonNullable<SandboxRecord['runtime']>): boolean {
  const info = readProcess(runtime.initPid);
  return !info || info.startTime !== runtime.initStartTime || info.state === 'Z';
}

async function record(id: string): Promise<SandboxRecord> {
  return JSON.parse(await readFile(join(home, 'sandboxes', id, 'sandbox.json'), 'utf8'));
}

/** Runs until `condition` holds (polled every millisecond or so), or fails after `timeoutMs`. */
async function until(condition: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await sleep(1);
  }
}

/**
 * A sandbox holding `files` random files and a background process, made by a worker of the given kind
 * (a sandbox started without the freezer cgroup is frozen with SIGSTOP by every process).
 */
async function seeded(files: number, options = { freezer: true }): Promise<Sandbox> {
  const worker = startWorker('operation.mjs', { home, operation: 'seed', files }, options);
  const { done, stderr } = await worker.exit;
  if (!done?.id) throw new Error(`seeding failed: ${stderr}`);
  return statebox().get(done.id);
}

describe.skipIf(Boolean(skip))(`locks${skipped}`, () => {
  it('takes over an empty lock file at once (a holder killed between creating it and writing its pid)', async () => {
    const box = await statebox().create();
    await writeFile(join(home, 'locks', `${box.id}.lock`), '');
    const started = Date.now();
    await box.suspend();
    expect(Date.now() - started).toBeLessThan(10_000);
    await writeFile(join(home, 'locks', `${box.id}.lock`), '\0\0garbled\xff');
    await box.resume();
    await box.destroy();
  });

  it('ignores a lock naming a live process that does not hold it (a dead holder whose pid was reused)', async () => {
    const box = await statebox().create();
    const unrelated = readProcess(process.pid)!;
    await writeFile(join(home, 'locks', `${box.id}.lock`), `${process.pid} ${unrelated.startTime}\n`);
    await box.suspend();
    await box.destroy();
  });

  it('excludes other processes while held, and is released by the kernel when its holder is killed', async () => {
    const box = await statebox().create();
    const lockPath = join(home, 'locks', `${box.id}.lock`);
    // Another process holds the lock the way statebox does: flock on an open file description.
    const holder = spawn('flock', ['--exclusive', '--close', lockPath, 'sleep', '600'], {
      stdio: 'ignore',
      detached: true,
    });
    await until(() => hasFlock(holder.pid!), 'the other process holds the lock');
    const waiting = new Home(home).lock(box.id, 300);
    const error = await waiting.catch((caught: unknown) => caught);
    expect(TransientError.isInstance(error)).toBe(true);
    expect((error as Error).message).toMatch(new RegExp(`Sandbox ${box.id} is locked`));
    let suspended = false;
    const suspending = box.suspend().then(() => {
      suspended = true;
    });
    await sleep(300);
    expect(suspended).toBe(false);
    process.kill(-holder.pid!, 'SIGKILL');
    await suspending;
    expect(box.status).toBe('suspended');
    await box.destroy();
  });
});

function readFileSafe(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

function hasFlock(pid: number): boolean {
  return readFileSafe('/proc/locks')
    .split('\n')
    .some((line) => line.includes('FLOCK') && line.split(/\s+/)[4] === String(pid));
}

describe.skipIf(Boolean(skip))(`a fork killed part-way${skipped}`, () => {
  const modes = [
    { name: 'with the freezer cgroup', freezer: true, skip: freezerSkipReason() },
    { name: 'with SIGSTOP (hosts without a freezer cgroup)', freezer: false, skip: undefined },
  ];
  for (const mode of modes) {
    it.skipIf(mode.skip)(
      `leaves no source process stopped and no half-built layer, copying ${mode.name}`,
      async () => {
        const box = await seeded(3000, { freezer: mode.freezer });
        const before = await manifest(box);
        const { runtime } = await record(box.id);
        const worker = startWorker(
          'operation.mjs',
          { home, operation: 'fork', sandboxId: box.id },
          { freezer: mode.freezer },
        );
        await worker.go;
        // Killed while the source is frozen and its upper half copied.
        const building = () =>
          readdirSync(join(home, 'layers')).some((entry) => entry.startsWith('.building-'));
        await until(
          () => (isFrozen(runtime!) && building()) || worker.child.exitCode !== null,
          'the source is frozen and copied in part',
        );
        const frozen = isFrozen(runtime!);
        worker.child.kill('SIGKILL');
        const { done, stderr } = await worker.exit;
        expect({ frozen, done, stderr }).toEqual({ frozen: true, done: undefined, stderr: '' });
        expect(building()).toBe(true);
        // The next operation, from another process, repairs at once.
        expect((await box.exec('echo alive')).stdout).toBe('alive\n');
        expect(stoppedProcesses(home)).toEqual([]);
        expect(await manifest(box)).toEqual(before);
        expect((await statebox().list()).map((info) => info.id)).toEqual([box.id]);
        await destroyAll(statebox());
        expect(await settle(() => leftovers(home))).toEqual([]);
      },
    );
  }

  const sealPoints = [
    { point: 'while its source is stopped for the seal', restarting: false },
    { point: "while its source's new init starts", restarting: true },
  ];
  for (const { point, restarting } of sealPoints) {
    it(`restores a running source it sealed, and leaves no init that no record names: killed ${point}`, async () => {
      const box = await seeded(4100);
      const before = await manifest(box);
      const { runtime } = await record(box.id);
      const worker = startWorker(
        'operation.mjs',
        { home, operation: 'fork', sandboxId: box.id },
        { freezer: true },
      );
      await worker.go;
      const reached = restarting
        ? () => supervisors(home, box.id).some((pid) => pid !== runtime!.supervisorPid)
        : () => isGone(runtime!);
      await until(() => reached() || worker.child.exitCode !== null, point);
      worker.child.kill('SIGKILL');
      const { done, stderr } = await worker.exit;
      expect({ done, stderr }).toEqual({ done: undefined, stderr: '' });
      expect((await statebox().get(box.id)).status).toBe('running');
      expect((await box.exec('echo alive')).stdout).toBe('alive\n');
      expect(supervisors(home, box.id)).toHaveLength(1);
      expect(await manifest(box)).toEqual(before);
      await destroyAll(statebox());
      expect(await settle(() => leftovers(home))).toEqual([]);
    });
  }
});

function isFrozen(runtime: NonNullable<SandboxRecord['runtime']>): boolean {
  if (runtime.cgroups)
    return readFileSafe(join(runtime.cgroups.freezer, 'freezer.state')).trim() === 'FROZEN';
  const namespace = pidNamespace(runtime.initPid);
  return namespace !== undefined && namespaceProcesses(namespace).members.every((info) => info.state === 'T');
}

describe.skipIf(Boolean(skip))(`a corrupt record${skipped}`, () => {
  for (const [kind, text] of [
    ['truncated JSON', '{"version": 1, "id": "sbx-'],
    ['valid JSON that is no record', '[]'],
  ]) {
    it(`(${kind}) is refused by get with advice to destroy, and destroy stops its init and removes it`, async () => {
      const box = await statebox().create();
      const { runtime } = await record(box.id);
      await writeFile(join(home, 'sandboxes', box.id, 'sandbox.json'), text!);
      const error = await statebox()
        .get(box.id)
        .catch((caught: unknown) => caught);
      expect(ProviderError.isInstance(error)).toBe(true);
      expect((error as ProviderError).sandboxId).toBe(box.id);
      expect((error as Error).message).toMatch(/corrupt.*destroy/);
      await local({ home }).destroy(box.id);
      expect(existsSync(join(home, 'sandboxes', box.id))).toBe(false);
      await until(() => isGone(runtime!), 'the init is gone', 5000);
      expect(await settle(() => leftovers(home))).toEqual([]);
    });
  }
});

describe.skipIf(Boolean(skip))(`a tree deeper than PATH_MAX on the host${skipped}`, () => {
  const deepTree =
    'd=$(printf "d%.0s" $(seq 200)); for i in $(seq 25); do mkdir $d && cd $d; done; echo deep > f';
  const readDeep = 'd=$(printf "d%.0s" $(seq 200)); for i in $(seq 25); do cd $d; done; cat f';

  it('is forked (running and suspended source) and destroyed without a trace', async () => {
    const box = await statebox().create();
    expect((await box.exec(deepTree)).exitCode).toBe(0);
    const running = await box.fork();
    expect((await running.exec(readDeep)).stdout).toBe('deep\n');
    await box.exec('echo again > again');
    await box.suspend();
    const suspended = await box.fork();
    expect((await suspended.exec(readDeep)).stdout).toBe('deep\n');
    await box.resume();
    expect((await box.exec(readDeep)).stdout).toBe('deep\n');
    for (const sandbox of [running, suspended, box]) await sandbox.destroy();
    expect(await statebox().list()).toEqual([]);
    expect(await settle(() => leftovers(home))).toEqual([]);
  });
});

describe.skipIf(Boolean(skip))(`exec racing suspend${skipped}`, () => {
  it('rejects with InvalidStateError saying to resume, never a result of the killed command', async () => {
    const box = await statebox().create();
    const running = box.exec('sleep 5; echo finished').catch((caught: unknown) => caught);
    await sleep(300);
    await createStatebox({ provider: local({ home }) })
      .get(box.id)
      .then((other) => other.suspend());
    const error = await running;
    expect(InvalidStateError.isInstance(error)).toBe(true);
    expect((error as InvalidStateError).sandboxId).toBe(box.id);
    expect((error as Error).message).toMatch(/resume\(\)/);
    await box.resume();
    const outcomes = await Promise.all(
      Array.from({ length: 8 }, async (_, index) => {
        await sleep(index * 15);
        return box.exec(`sleep 0.0${index}; echo ok`).then(
          (output) => (output.exitCode === 0 && output.stdout === 'ok\n' ? 'ok' : `exit ${output.exitCode}`),
          (caught: unknown) => (StateboxError.isInstance(caught) ? (caught as Error).name : String(caught)),
        );
      }).concat([sleep(60).then(() => box.suspend().then(() => 'suspended'))]),
    );
    for (const outcome of outcomes) expect(['ok', 'InvalidStateError', 'suspended']).toContain(outcome);
    await box.destroy();
  });
});

describe.skipIf(Boolean(skip))(`freezing with SIGSTOP (hosts without a freezer cgroup)${skipped}`, () => {
  it('stops and continues processes of PID namespaces that the sandbox nested in its own', async () => {
    const box = await statebox().create();
    await box.exec('unshare --pid --fork sleep 1001 >/dev/null 2>&1 &');
    const { runtime } = await record(box.id);
    const namespace = pidNamespace(runtime!.initPid)!;
    const nested = () =>
      namespaceProcesses(namespace).members.filter(
        (info) => info.name === 'sleep' && pidNamespace(info.pid) !== namespace,
      );
    await until(() => nested().length === 1, 'the nested process runs');
    const thaw = await freezeSandbox(runtime!, undefined);
    expect(nested().map((info) => info.state)).toEqual(['T']);
    thaw!();
    expect(nested().map((info) => info.state)).not.toEqual(['T']);
    expect(stoppedProcesses(home)).toEqual([]);
  });
});

describe.skipIf(Boolean(skip))(`an exec whose nsenter was stopped${skipped}`, () => {
  it('settles once a SIGSTOP freeze is thawed (the thaw reaches the nsenter that stopped itself)', async () => {
    const box = await statebox().create();
    let settled: unknown;
    const running = box.exec('sleep 1; echo ok').then(
      (output) => {
        settled = output;
      },
      (error: unknown) => {
        settled = error;
      },
    );
    const { runtime } = await record(box.id);
    const namespace = pidNamespace(runtime!.initPid)!;
    await until(
      () =>
        namespaceProcesses(namespace).members.some(
          (info) => info.name === 'sleep' && info.ppid !== runtime!.initPid,
        ),
      'the command runs',
    );
    // The freeze a fork does on hosts without a freezer cgroup.
    const thaw = await freezeSandbox(runtime!, undefined);
    expect(thaw).toBeDefined();
    await sleep(300);
    thaw!();
    await until(() => settled !== undefined, 'the exec settles', 10_000);
    await running;
    expect(settled).toMatchObject({ exitCode: 0, stdout: 'ok\n' });
    expect(stoppedProcesses(home)).toEqual([]);
  });

  it('does not wedge the next resume, and the exec ends with a typed error', async () => {
    const box = await statebox().create();
    const running = box.exec('sleep 30').catch((caught: unknown) => caught);
    const { runtime } = await record(box.id);
    const namespace = pidNamespace(runtime!.initPid)!;
    // The command's first process in the sandbox, whose parent is the exec's nsenter outside.
    let entered: number | undefined;
    await until(() => {
      const { members, waiters } = namespaceProcesses(namespace);
      const nsenter = waiters.find((info) => info.name === 'nsenter');
      entered = members.find((info) => nsenter !== undefined && info.ppid === nsenter.pid)?.pid;
      return entered !== undefined && members.some((info) => info.name === 'sleep' && info.ppid === entered);
    }, 'the command runs');
    // What a freeze does to it: its nsenter sees the stop and stops itself.
    process.kill(entered!, 'SIGSTOP');
    await until(
      () =>
        namespaceProcesses(namespace).waiters.some((info) => info.name === 'nsenter' && info.state === 'T'),
      'nsenter stops itself',
    );
    await box.suspend();
    await box.resume();
    const error = await running;
    expect(InvalidStateError.isInstance(error) || SandboxNotFoundError.isInstance(error)).toBe(true);
    expect((await box.exec('echo alive')).stdout).toBe('alive\n');
    await box.destroy();
  });
});

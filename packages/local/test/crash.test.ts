import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createStatebox, InvalidStateError, type Sandbox, type Statebox } from '@statebox/core';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { local } from '../src/index.js';
import { freezerSkipReason, localSuiteSkip } from '../src/testing.js';
import {
  destroyAll,
  explainLeftovers,
  leftovers,
  manifest,
  rootless,
  settle,
  sleep,
  startWorker,
  stoppedProcesses,
  writeTemporaries,
} from './crash-support.js';

/** Local sandboxes need Linux namespaces and overlayfs: each suite here is skipped, with the reason, without them. */
const skip = localSuiteSkip();
const skipped = skip ? ` (skipped: ${skip})` : '';

/**
 * Kill at any point: a worker process runs one operation against a home and is SIGKILLed after a
 * random delay spread over that operation's duration (measured by a first, uninterrupted run). Then,
 * from this process with a fresh provider: the next operation on the sandbox succeeds (or a sandbox
 * that was being created or destroyed is cleanly there or cleanly gone), its files match the sha256
 * manifest taken before, no process of any sandbox is left stopped, list() names exactly the sandboxes
 * that work, and once they are all destroyed nothing is left: no directory, layer, lock file or process.
 *
 * TRIALS kills per operation (STATEBOX_SOAK=1 multiplies them by 10); the counts are printed at the end.
 */

const SOAK = process.env.STATEBOX_SOAK === '1' ? 10 : 1;
const TRIALS = 5 * SOAK;
const NEW_CONTENT_BYTES = 8 * 1024 * 1024;

type Kind = {
  name: string;
  operation: 'create' | 'exec' | 'writeFile' | 'suspend' | 'resume' | 'fork' | 'destroy';
  /** Random files in the sandbox before the operation (800 are copied while frozen; 4,100 are sealed). */
  files?: number;
  /** Their size, 2 KiB unless said. */
  fileBytes?: number;
  /** Started and frozen without the freezer cgroup, as on hosts that lack one (SIGSTOP). */
  sigstop?: boolean;
  /** Why this kind cannot run here (a named skip). */
  skip?: string;
  /** Suspend first; with `chain`, seal that many layers first, so the worker's resume compacts them. */
  suspended?: boolean;
  chain?: number;
};

const kinds: Kind[] = [
  { name: 'create', operation: 'create' },
  { name: 'exec', operation: 'exec', files: 200 },
  { name: 'writeFile (8 MiB)', operation: 'writeFile', files: 200 },
  { name: 'suspend', operation: 'suspend', files: 200 },
  { name: 'resume', operation: 'resume', files: 200, suspended: true },
  { name: 'resume with compaction', operation: 'resume', files: 200, suspended: true, chain: 3 },
  {
    name: 'fork, copy path (freezer cgroup)',
    operation: 'fork',
    files: 800,
    skip: rootless
      ? 'rootless: a fork of a running sandbox always seals (no copy path, no cgroups)'
      : freezerSkipReason(),
  },
  {
    name: 'fork, copy path (SIGSTOP)',
    operation: 'fork',
    files: 800,
    sigstop: true,
    skip: rootless ? 'rootless: a fork of a running sandbox always seals (no copy path)' : undefined,
  },
  { name: 'fork, seal path', operation: 'fork', files: 4100, fileBytes: 64 },
  { name: 'destroy', operation: 'destroy', files: 200 },
];

type Tally = {
  trials: number;
  killedInside: number;
  finished: number;
  nextOperations: Record<string, number>;
};
const tallies = new Map<string, Tally>();
/** A home per operation, so that a failure in one does not spill into the next. */
let home: string;

beforeEach(async () => {
  home = await mkdtemp(join(tmpdir(), 'statebox-crash-'));
});

afterEach(async () => {
  await destroyAll(fresh()).catch(() => undefined);
  await rm(home, { recursive: true, force: true });
});

afterAll(() => {
  const rows = [...tallies].map(([name, tally]) => ({ operation: name, ...tally }));
  console.log(
    `kill-at-any-point trials (STATEBOX_SOAK=${SOAK === 10 ? 1 : 0}):\n${JSON.stringify(rows, null, 1)}`,
  );
});

const fresh = (): Statebox => createStatebox({ provider: local({ home }) });

/**
 * The sandbox an operation runs on, made as the kind says (by a worker, when it must be SIGSTOP-frozen),
 * and the manifest of its files.
 */
async function prepare(kind: Kind): Promise<{ box?: Sandbox; before?: Record<string, string> }> {
  if (kind.operation === 'create') return {};
  let box: Sandbox;
  if (kind.sigstop) {
    const seeding = startWorker(
      'operation.mjs',
      { home, operation: 'seed', files: kind.files },
      { freezer: false },
    );
    const { done, stderr } = await seeding.exit;
    if (!done?.id) throw new Error(`seeding failed: ${stderr}`);
    box = await fresh().get(done.id);
  } else {
    box = await fresh().create();
    await box.exec(seedCommand(kind.files ?? 0, kind.fileBytes));
    await box.exec('sleep 1000 >/dev/null 2>&1 &');
  }
  if (kind.operation === 'writeFile') await box.writeFile('target.bin', 'old content');
  for (let generation = 0; generation < (kind.chain ?? 0); generation++) {
    await box.writeFile(`generation-${generation}`, String(generation));
    await box.suspend();
    // Forking a suspended sandbox seals its upper into a layer of its own chain.
    await (await box.fork()).destroy();
    await box.resume();
  }
  const before = await manifest(box);
  if (kind.suspended) await box.suspend();
  return { box, before };
}

/** As fixtures/operation.mjs seeds: random 2 KiB files under /workspace/seed, made by two processes. */
function seedCommand(files: number, bytes = 2048): string {
  return `mkdir -p seed && cd seed && head -c ${files * bytes} /dev/urandom | split -b ${bytes} -a 5 - f`;
}

/** What the worker's writeFile writes (the same deterministic bytes as fixtures/operation.mjs). */
function newContentHash(): string {
  const out = Buffer.alloc(NEW_CONTENT_BYTES);
  let block = createHash('sha256').update('statebox').digest();
  for (let offset = 0; offset < NEW_CONTENT_BYTES; offset += block.length) {
    block.copy(out, offset);
    block = createHash('sha256').update(block).digest();
  }
  return createHash('sha256').update(out).digest('hex');
}
const newHash = newContentHash();

/** Runs the next operation on a sandbox (chosen at random), and returns its files afterwards. */
async function nextOperation(
  box: Sandbox,
  tally: Tally,
): Promise<{ files: Record<string, string>; child?: Sandbox }> {
  const choice = (['exec', 'resume', 'get', 'fork'] as const)[Math.floor(Math.random() * 4)]!;
  tally.nextOperations[choice] = (tally.nextOperations[choice] ?? 0) + 1;
  const ensureRunning = async (sandbox: Sandbox) => {
    const output = await sandbox.exec('echo alive').catch(async (error: unknown) => {
      if (!InvalidStateError.isInstance(error)) throw error;
      await sandbox.resume();
      return sandbox.exec('echo alive');
    });
    expect(output.stdout).toBe('alive\n');
  };
  let child: Sandbox | undefined;
  if (choice === 'resume') await box.resume();
  if (choice === 'get') await (await fresh().get(box.id)).resume();
  if (choice === 'fork') child = await box.fork();
  await ensureRunning(box);
  return { files: await manifest(box), ...(child && { child }) };
}

async function trial(kind: Kind, tally: Tally, killAfterMs: number | undefined): Promise<number | undefined> {
  const { box, before } = await prepare(kind);
  const worker = startWorker(
    'operation.mjs',
    {
      home,
      operation: kind.operation,
      sandboxId: box?.id,
      bytes: NEW_CONTENT_BYTES,
      ...(kind.chain && { maxLayers: 2 }),
    },
    { freezer: !kind.sigstop },
  );
  await worker.go;
  if (killAfterMs !== undefined) {
    await sleep(killAfterMs);
    worker.child.kill('SIGKILL');
  }
  const { done, stderr, code } = await worker.exit;
  if (!done && killAfterMs === undefined) throw new Error(`${kind.name} failed (exit ${code}): ${stderr}`);
  tally.trials++;
  if (done) tally.finished++;
  else tally.killedInside++;
  const context = `${kind.name}, killed after ${killAfterMs?.toFixed(1)} ms (${done ? 'it had finished' : 'inside'})`;

  const statebox = fresh();
  const listed = await statebox.list();
  const known = new Set([box?.id, done?.id].filter(Boolean));
  // Whatever list() names works and holds the files; a sandbox made by the killed operation may be
  // there only if it had committed (then it is whole), never half.
  for (const info of listed) {
    const sandbox = await statebox.get(info.id);
    const { files, child } = await nextOperation(sandbox, tally);
    if (child) expect(await manifest(child), context).toEqual(files);
    if (before) {
      const expected = { ...before };
      // writeFile replaces its target atomically: the old content or the new, never a mix.
      if (kind.operation === 'writeFile') {
        expect([before['/workspace/target.bin'], newHash], context).toContain(files['/workspace/target.bin']);
        expected['/workspace/target.bin'] = files['/workspace/target.bin']!;
      }
      expect(files, context).toEqual(expected);
    }
    await settleTemporaries(sandbox, context);
  }
  const ids = listed.map((info) => info.id);
  if (kind.operation === 'create') expect(ids.length, context).toBeLessThanOrEqual(1);
  if (kind.operation === 'create' && done) expect(ids, context).toEqual([done.id]);
  if (kind.operation === 'destroy' && done) expect(ids, context).not.toContain(box!.id);
  if (kind.operation !== 'destroy' && box) expect(ids, context).toContain(box.id);
  if (kind.operation === 'fork') {
    expect(ids.filter((id) => !known.has(id)).length, context).toBeLessThanOrEqual(1);
    if (done) expect(ids, context).toContain(done.id);
  }
  expect(stoppedProcesses(home).join('; '), context).toBe('');
  await destroyAll(fresh());
  const left = (await settle(() => leftovers(home))).join('; ');
  expect(left, `${context}\n${left && explainLeftovers(home)}`).toBe('');
  return done?.ms;
}

/** A writeFile cut short inside the sandbox removes its temporary file as it exits. */
async function settleTemporaries(box: Sandbox, context: string): Promise<void> {
  const deadline = Date.now() + 5000;
  let found = await writeTemporaries(box);
  while (found.length > 0 && Date.now() < deadline) {
    await sleep(100);
    found = await writeTemporaries(box);
  }
  expect(found.join('; '), context).toBe('');
}

describe.skipIf(Boolean(skip))(`killed at any point${skipped}`, () => {
  for (const kind of kinds) {
    const title = `${kind.name}: ${TRIALS} kills spread over its duration${kind.skip ? ` (skipped: ${kind.skip})` : ''}`;
    it.skipIf(Boolean(kind.skip))(title, { timeout: 120_000 * SOAK }, async () => {
      const tally: Tally = { trials: 0, killedInside: 0, finished: 0, nextOperations: {} };
      tallies.set(kind.name, tally);
      // An uninterrupted run first: it must pass the same checks, and it measures the operation.
      let duration = (await trial(kind, tally, undefined))!;
      for (let index = 0; index < TRIALS; index++) {
        // A run that finished before its kill measures the operation again (the first run is the slowest).
        duration = (await trial(kind, tally, Math.random() * duration * 1.1)) ?? duration;
      }
      expect(tally.killedInside).toBeGreaterThan(0);
    });
  }
});

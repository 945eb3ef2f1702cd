import { createHash, randomBytes } from 'node:crypto';
import type { Manifest } from '../fidelity.ts';
import { run } from '../process.ts';
import { median, percentile, round, time } from '../stats.ts';
import { SCRATCH_DIR, type WorkspacePlan } from '../workspace.ts';
import {
  closeRawLane,
  openRawLane,
  type RawLane,
  type RawResult,
  type RawSdk,
  rawLane,
  rawResult,
  rawStep,
  rawSteps,
} from './raw.ts';
import { type Check, checkState, loadWorkspace, MARKER } from './state.ts';
import { type Box, type Driver, isUnsupported } from './types.ts';

/**
 * The lifecycle figures of the main harness, on every backend of the run at once. Each round measures
 * one operation on every backend back to back before the next operation, and the backends' order
 * rotates every round, so that the shared machine's noise falls on all alike. A backend with a raw
 * vendor SDK (`options.raws`) also does each operation through that SDK in the same round, right after
 * its adapter operation (right before it, every other round): see `raw.ts`.
 */

export const lifecycleOperations = [
  ['create', 'create (empty sandbox, until usable)'],
  ['exec_p50', 'exec `true` p50'],
  ['exec_p99', 'exec `true` p99'],
  ['write_1mib', 'writeFile 1 MiB'],
  ['read_1mib', 'readFile 1 MiB'],
  ['suspend', 'suspend'],
  ['resume', 'resume'],
  ['fork', 'fork (running, fresh writes)'],
  ['fork_x5', 'fork x5 of one source'],
  ['destroy', 'destroy (a fork)'],
] as const;

export type OperationId = (typeof lifecycleOperations)[number][0];

export type Figure =
  | { value: number; samples: number[]; statistic: 'median' | 'p99' }
  | { unsupported: string };

export type LifecycleResult = {
  backend: string;
  figures: Partial<Record<OperationId, Figure>>;
  checks: Check[];
  error: string | null;
};

export type LifecycleOptions = {
  plan: WorkspacePlan;
  rounds: number;
  execPerRound: number;
  /** The raw vendor SDK of a backend, by backend name, measured beside its adapter in the same rounds. */
  raws?: ReadonlyMap<string, RawSdk>;
  progress(message: string): void;
};

type Lane = {
  driver: Driver;
  main: Box | undefined;
  expected: Manifest | undefined;
  samples: Map<string, number[]>;
  checks: Check[];
  error: string | null;
  raw: RawLane | undefined;
};

export async function runLifecycle(
  drivers: Driver[],
  options: LifecycleOptions,
): Promise<{ lanes: LifecycleResult[]; raw: RawResult[] }> {
  const { plan, progress } = options;
  const lanes: Lane[] = drivers.map((driver) => ({
    driver,
    main: undefined,
    expected: undefined,
    samples: new Map(),
    checks: [],
    error: null,
    raw: options.raws?.has(driver.name) ? rawLane(options.raws.get(driver.name)!) : undefined,
  }));
  const push = (lane: Lane, key: string, ms: number) => {
    const list = lane.samples.get(key) ?? [];
    list.push(ms);
    lane.samples.set(key, list);
  };
  const check = async (lane: Lane, box: Box, after: string, marker: string | undefined) => {
    const result = await checkState(box, lane.driver.name, after, lane.expected!, plan.sample, marker);
    lane.checks.push(result);
    if (!result.ok) throw new Error(`state lost after ${after}: ${result.problems.join('; ')}`);
  };
  // A backend that fails is reported with its error and leaves the rounds; the others go on.
  const guarded = async (lane: Lane, what: string, action: () => Promise<void>) => {
    if (lane.error !== null) return;
    try {
      await action();
    } catch (error) {
      lane.error = `${what}: ${(error as Error).message}`;
      progress(`${lane.driver.name}: FAILED ${lane.error}`);
    }
  };

  for (const lane of lanes) {
    await guarded(lane, 'workspace', async () => {
      const started = performance.now();
      lane.main = await lane.driver.create();
      lane.expected = await loadWorkspace(lane.main, plan);
      progress(
        `${lane.driver.name}: workspace of ${lane.expected.fileCount} files loaded in ${((performance.now() - started) / 1000).toFixed(1)} s (not a figure)`,
      );
      // One warm-up of each path, untimed.
      const warm = await lane.driver.create();
      await lane.driver.destroy(warm);
      await lane.main.exec('true');
    });
    if (lane.raw && lane.main) {
      const started = performance.now();
      await openRawLane(lane.raw, lane.main.id, plan);
      // One warm-up, untimed, as on the adapter's side.
      await rawStep(lane.raw, 'raw warm-up', async (raw, id) => {
        await raw.sdk.measure.exec?.(id);
      });
      progress(
        `${lane.driver.name}: raw ${lane.raw.sdk.sdk} ready in ${((performance.now() - started) / 1000).toFixed(1)} s${lane.raw.error ? `; FAILED ${lane.raw.error}` : lane.raw.shared ? " (on the adapter's sandbox)" : ' (own sandbox, same workspace)'}`,
      );
    }
  }

  // As in the main harness: flush the loads' dirty pages (untimed), or the first seal of a local
  // suspend or fork pays for the whole workspace's writeback.
  await run('sync', []);
  const payload = randomBytes(1024 * 1024);
  const digest = createHash('sha256').update(payload).digest('hex');
  for (let round = 0; round < options.rounds; round++) {
    const order = lanes.map((_, index) => lanes[(index + round) % lanes.length]!);
    // The adapter's step and the raw SDK's take turns going first, so drift falls on both alike.
    const each = async (
      what: string,
      action: (lane: Lane) => Promise<void>,
      raw?: (raw: RawLane, id: string) => Promise<void>,
    ) => {
      for (const lane of order) {
        const adapter = () => guarded(lane, `${what} (round ${round + 1})`, () => action(lane));
        const vendor = () =>
          raw && lane.error === null ? rawStep(lane.raw, `${what} (round ${round + 1})`, raw) : undefined;
        if (round % 2 === 0) {
          await adapter();
          await vendor();
        } else {
          await vendor();
          await adapter();
        }
      }
    };
    await each(
      'create',
      async (lane) => {
        let box: Box | undefined;
        push(
          lane,
          'create',
          await time(async () => {
            box = await lane.driver.create();
          }),
        );
        const listing = await box!.exec('ls -A');
        await lane.driver.destroy(box!);
        if (listing.exitCode !== 0 || listing.stdout.trim() !== '')
          throw new Error(
            `a new sandbox is not empty: exit ${listing.exitCode}, ${listing.stdout.slice(0, 80)}`,
          );
      },
      rawSteps.create,
    );
    await each('exec', async (lane) => {
      for (let index = 0; index < options.execPerRound; index++) {
        // With a raw side, exec samples alternate one by one, which side goes first alternating too.
        const rawFirst = (index + round) % 2 === 1;
        if (rawFirst) await rawStep(lane.raw, `exec (round ${round + 1})`, rawSteps.exec);
        const started = performance.now();
        const result = await lane.main!.exec('true');
        push(lane, 'exec', performance.now() - started);
        if (result.exitCode !== 0) throw new Error(`exec true exited ${result.exitCode}: ${result.stderr}`);
        if (!rawFirst) await rawStep(lane.raw, `exec (round ${round + 1})`, rawSteps.exec);
      }
    });
    await each(
      'writeFile/readFile',
      async (lane) => {
        const path = `${SCRATCH_DIR}/io.bin`;
        push(lane, 'write_1mib', await time(() => lane.main!.writeFile(path, payload)));
        let read: Uint8Array = new Uint8Array();
        push(
          lane,
          'read_1mib',
          await time(async () => {
            read = await lane.main!.readFile(path);
          }),
        );
        const found = createHash('sha256').update(read).digest('hex');
        lane.checks.push({
          after: `writeFile/readFile #${round + 1}`,
          backend: lane.driver.name,
          ok: found === digest,
          problems: found === digest ? [] : [`read back ${read.length} bytes, sha256 ${found.slice(0, 12)}`],
        });
        if (found !== digest) throw new Error('readFile returned other bytes than writeFile wrote');
      },
      (raw, id) => rawSteps.files(raw, id, payload),
    );
    await each(
      'suspend/resume',
      async (lane) => {
        const { suspend, resume } = lane.driver;
        if (isUnsupported(suspend) || isUnsupported(resume)) return;
        const marker = `suspend #${round + 1} ${randomBytes(4).toString('hex')}`;
        await lane.main!.writeFile(MARKER, marker);
        push(lane, 'suspend', await time(() => suspend(lane.main!)));
        push(lane, 'resume', await time(() => resume(lane.main!)));
        await check(lane, lane.main!, `suspend+resume #${round + 1}`, marker);
      },
      rawSteps.suspendResume,
    );
    await each(
      'fork',
      async (lane) => {
        const { fork } = lane.driver;
        if (isUnsupported(fork)) return;
        const marker = `fork #${round + 1} ${randomBytes(4).toString('hex')}`;
        await lane.main!.writeFile(`${SCRATCH_DIR}/fresh-${round}.bin`, randomBytes(1024 * 1024));
        await lane.main!.writeFile(MARKER, marker);
        let child: Box | undefined;
        push(
          lane,
          'fork',
          await time(async () => {
            child = await fork(lane.main!);
          }),
        );
        await check(lane, child!, `fork #${round + 1} (child)`, marker);
        await check(lane, lane.main!, `fork #${round + 1} (source)`, marker);
        push(lane, 'destroy', await time(() => lane.driver.destroy(child!)));
      },
      (raw, id) => rawSteps.forkDestroy(raw, id, round),
    );
    await each('fork x5', async (lane) => {
      const { fork } = lane.driver;
      if (isUnsupported(fork)) return;
      const marker = `fan-out #${round + 1} ${randomBytes(4).toString('hex')}`;
      await lane.main!.writeFile(MARKER, marker);
      let children: Box[] = [];
      push(
        lane,
        'fork_x5',
        await time(async () => {
          children = await Promise.all(Array.from({ length: 5 }, () => fork(lane.main!)));
        }),
      );
      for (const [number, child] of children.entries())
        await check(lane, child, `fork x5 #${round + 1} (child ${number + 1})`, marker);
      if (round === 0) await isolation(lane, children);
      for (const child of children) await lane.driver.destroy(child);
    });
    progress(
      `lifecycle round ${round + 1}/${options.rounds} done (order: ${order.map((lane) => lane.driver.name).join(', ')})`,
    );
  }
  for (const lane of lanes) {
    if (lane.main) await lane.driver.destroy(lane.main).catch(() => undefined);
    await closeRawLane(lane.raw);
  }
  return {
    lanes: lanes.map((lane) => ({
      backend: lane.driver.name,
      figures: figuresOf(lane),
      checks: lane.checks,
      error: lane.error,
    })),
    raw: lanes.flatMap((lane) =>
      lane.raw ? [rawResult(lane.driver.name, lane.raw, lane.samples, lane.error)] : [],
    ),
  };
}

/** A child's write must not reach its source or its siblings. */
async function isolation(lane: Lane, children: Box[]): Promise<void> {
  const problems: string[] = [];
  for (const [number, child] of children.entries())
    await child.writeFile(`${SCRATCH_DIR}/only-child-${number}`, `child ${number}`);
  for (const [number, observer] of [lane.main!, ...children].entries()) {
    const listing = await observer.exec(`ls ${SCRATCH_DIR} | grep only-child- || true`);
    const own = number === 0 ? [] : [`only-child-${number - 1}`];
    const foreign = listing.stdout.split('\n').filter((name) => name && !own.includes(name));
    if (foreign.length > 0)
      problems.push(`${number === 0 ? 'source' : `child ${number}`} sees ${foreign.join(', ')}`);
  }
  lane.checks.push({
    after: 'fork x5 (isolation)',
    backend: lane.driver.name,
    ok: problems.length === 0,
    problems,
  });
  if (problems.length > 0) throw new Error(`forks are not isolated: ${problems.join('; ')}`);
}

function figuresOf(lane: Lane): Partial<Record<OperationId, Figure>> {
  const figures: Partial<Record<OperationId, Figure>> = {};
  const put = (id: OperationId, key: string, statistic: 'median' | 'p99') => {
    const samples = lane.samples.get(key);
    if (!samples || samples.length === 0) return;
    const value = statistic === 'median' ? median(samples) : percentile(samples, 99);
    figures[id] = { value: round(value), samples: samples.map(round), statistic };
  };
  put('create', 'create', 'median');
  put('exec_p50', 'exec', 'median');
  put('exec_p99', 'exec', 'p99');
  put('write_1mib', 'write_1mib', 'median');
  put('read_1mib', 'read_1mib', 'median');
  const { suspend, fork } = lane.driver;
  if (isUnsupported(suspend)) {
    figures.suspend = { unsupported: suspend.unsupported };
    figures.resume = { unsupported: suspend.unsupported };
  } else {
    put('suspend', 'suspend', 'median');
    put('resume', 'resume', 'median');
  }
  if (isUnsupported(fork)) {
    figures.fork = { unsupported: fork.unsupported };
    figures.fork_x5 = { unsupported: fork.unsupported };
  } else {
    put('fork', 'fork', 'median');
    put('fork_x5', 'fork_x5', 'median');
  }
  put('destroy', 'destroy', 'median');
  return figures;
}

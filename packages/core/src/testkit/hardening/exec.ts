/** Hardening: exec timeouts and aborts end daemons; an exec interrupted by suspend, fork or destroy says so. */
import { describe, expect } from 'vitest';
import { InvalidStateError, SandboxNotFoundError, TimeoutError } from '../../errors.js';
import type { Sandbox } from '../../sandbox.js';
import {
  describeError,
  expectAborted,
  expectError,
  randomSuffix,
  run,
  shellQuote,
  waitForFile,
  within,
} from '../helpers.js';
import { type HardeningContext, SETTLE_MS } from './shared.js';

export function describeExecHardening(hardening: HardeningContext): void {
  const { suite, capabilities, noSuspend, noFork, fork } = hardening;
  describe('hardening: exec bounds', () => {
    suite.test(
      'exec timeout ends a setsid double-forked daemon (output detached) and throws TimeoutError',
      async () => {
        const box = await suite.create({ labels: { purpose: 'timeout daemon' } });
        const tick = `/tmp/statebox-tick-${randomSuffix()}`;
        const started = Date.now();
        const error = await expectError(
          () => within(box.exec(daemon(tick, true), { timeoutMs: 1500 }), SETTLE_MS, 'exec'),
          TimeoutError,
          'exec starting a setsid daemon, past timeoutMs',
        );
        expect(error.timeoutMs).toBe(1500);
        expect(Date.now() - started).toBeGreaterThanOrEqual(1400);
        await expectStopped(box, tick, 'after the exec timed out');
      },
    );

    suite.test(
      "exec timeout is bounded although a setsid daemon holds the exec's output open, and ends it",
      async () => {
        const box = await suite.create({ labels: { purpose: 'timeout daemon holding output' } });
        const tick = `/tmp/statebox-tick-${randomSuffix()}`;
        await expectError(
          () => within(box.exec(daemon(tick, false), { timeoutMs: 1500 }), SETTLE_MS, 'exec'),
          TimeoutError,
          'exec whose setsid daemon keeps stdout open, past timeoutMs',
        );
        await expectStopped(box, tick, 'after the exec timed out');
      },
    );

    suite.test('exec abort ends a setsid double-forked daemon and rejects with the reason', async () => {
      const box = await suite.create({ labels: { purpose: 'abort daemon' } });
      const tick = `/tmp/statebox-tick-${randomSuffix()}`;
      const controller = new AbortController();
      const reason = new Error('statebox conformance abort of a daemon');
      const pending = box.exec(daemon(tick, true), { signal: controller.signal, timeoutMs: 100_000 });
      pending.catch(() => undefined);
      await waitForFile(box, tick, 15_000);
      controller.abort(reason);
      await expectAborted(within(pending, SETTLE_MS, 'exec after abort'), reason, 'exec aborted');
      await expectStopped(box, tick, 'after the exec was aborted');
    });

    suite.test(
      'a setsid daemon started by an exec that returns normally keeps running (the timeout cases’ control)',
      async () => {
        const box = await suite.create({ labels: { purpose: 'daemon kept' } });
        const tick = `/tmp/statebox-tick-${randomSuffix()}`;
        const loop = `echo $$ > ${tick}.pid; while :; do echo x >> ${tick}; sleep 0.2; done`;
        const result = await within(
          box.exec(`(setsid sh -c ${shellQuote(loop)} </dev/null >/dev/null 2>&1 &); echo started`, {
            timeoutMs: 30_000,
          }),
          SETTLE_MS,
          'exec starting a detached daemon',
        );
        expect(result.stdout).toBe('started\n');
        await waitForFile(box, tick, 15_000);
        const [before, after] = await tickSizes(box, tick);
        expect(after, 'the detached daemon stopped when its exec returned').toBeGreaterThan(before);
        await run(box, `kill $(cat ${tick}.pid)`);
      },
    );
  });
  describe('hardening: exec interrupted by suspend, fork or destroy', () => {
    /** Starts an exec that signals it runs by creating `marker`, then sleeps `seconds`, then prints `finished`. */
    const startSleeper = async (box: Sandbox, seconds: number) => {
      const marker = `interrupted-${randomSuffix()}`;
      const pending = box.exec(`echo started > ${marker}; sleep ${seconds}; echo finished`, {
        timeoutMs: 100_000,
      });
      pending.catch(() => undefined);
      await waitForFile(box, `${box.workdir}/${marker}`, 15_000);
      return { pending, marker };
    };

    suite.test(
      'an exec in flight when its sandbox is suspended rejects with InvalidStateError; resume works',
      async () => {
        const box = await suite.create({ labels: { purpose: 'exec racing suspend' } });
        const { pending, marker } = await startSleeper(box, 30);
        await box.suspend();
        const error = await expectError(
          () => within(pending, 10_000, 'the interrupted exec'),
          InvalidStateError,
          'exec in flight when its sandbox was suspended',
        );
        expect(error.sandboxId).toBe(box.id);
        expect((await box.resume()).status).toBe('running');
        expect(await run(box, `cat ${marker}`)).toBe('started\n');
      },
      noSuspend ??
        (capabilities.suspend === 'filesystem'
          ? undefined
          : `provider declares suspend: '${capabilities.suspend}' (processes survive a suspend)`),
    );

    suite.test(
      'an exec in flight when its source is forked settles: it finishes, or rejects with InvalidStateError',
      async () => {
        const source = await suite.create({ labels: { purpose: 'exec racing fork' } });
        const { pending, marker } = await startSleeper(source, 3);
        const child = await within(fork(source), 60_000, 'fork of a source running an exec');
        // A source whose processes are kept finishes the exec; one restarted by the fork (forkSource:
        // 'restarted' allows it) ends it, which must reject as typed, never return exit 137 or hang frozen.
        const outcome = await within(
          pending.then(
            (result) => result,
            (error: unknown) => error,
          ),
          20_000,
          'the exec in flight during the fork',
        );
        if (InvalidStateError.isInstance(outcome)) {
          expect(capabilities.forkSource, "the exec was interrupted although forkSource is 'kept'").toBe(
            'restarted',
          );
        } else if (outcome && typeof outcome === 'object' && 'exitCode' in outcome) {
          const result = outcome as Awaited<typeof pending>;
          expect(
            { exitCode: result.exitCode, stdout: result.stdout },
            'the exec in flight during the fork neither finished nor rejected with InvalidStateError ' +
              `(stderr: ${JSON.stringify(result.stderr.slice(0, 500))})`,
          ).toEqual({ exitCode: 0, stdout: 'finished\n' });
        } else {
          expect.fail(`the exec in flight during the fork rejected with ${describeError(outcome)}`);
        }
        expect(await run(child, `cat ${marker}`)).toBe('started\n');
        expect(await run(source, 'echo usable')).toBe('usable\n');
      },
      noFork,
    );

    suite.test(
      'an exec in flight when its sandbox is destroyed rejects with InvalidStateError or SandboxNotFoundError',
      async () => {
        const box = await suite.create({ labels: { purpose: 'exec racing destroy' } });
        const { pending } = await startSleeper(box, 30);
        await box.destroy();
        const rejection = await within(
          pending.then(
            (result) => expect.fail(`the exec resolved with exit code ${result.exitCode} after destroy`),
            (error: unknown) => error,
          ),
          10_000,
          'the exec in flight during destroy',
        );
        // The contract names InvalidStateError; SandboxNotFoundError is also accepted because a provider
        // that learns why its exec ended by looking the sandbox up finds it gone, which is just as true
        // and just as final (not retryable). What is refused is a bare exit code, a ProviderError or a hang.
        expect(
          InvalidStateError.isInstance(rejection) || SandboxNotFoundError.isInstance(rejection),
          `rejected with ${describeError(rejection)}`,
        ).toBe(true);
      },
    );
  });
}

/**
 * A command that starts a daemon appending to `tick` five times a second, detached with `setsid` from a
 * subshell that exits at once (a double fork: the daemon's parent is gone, its session is its own), then
 * waits a minute. `detachOutput: false` leaves the daemon holding the exec's stdout and stderr.
 */
function daemon(tick: string, detachOutput: boolean): string {
  const loop = `while :; do echo x >> ${tick}; sleep 0.2; done`;
  const redirect = detachOutput ? ' </dev/null >/dev/null 2>&1' : '';
  return `(setsid sh -c ${shellQuote(loop)}${redirect} &); echo started; sleep 60`;
}

/** The size of `tick` twice, one second apart, measured inside the sandbox. */
async function tickSizes(box: Sandbox, tick: string): Promise<[number, number]> {
  const [before, after] = (
    await run(box, `a=$(cat ${tick} | wc -c); sleep 1; b=$(cat ${tick} | wc -c); echo $a $b`)
  )
    .trim()
    .split(' ')
    .map(Number);
  return [before!, after!];
}

/** Asserts that the daemon writing `tick` ran (the control) and no longer does. */
async function expectStopped(box: Sandbox, tick: string, when: string): Promise<void> {
  const [before, after] = await tickSizes(box, tick);
  expect(before, `the daemon never wrote ${tick}: is setsid in the image?`).toBeGreaterThan(0);
  expect(after, `the setsid daemon still runs ${when}`).toBe(before);
}

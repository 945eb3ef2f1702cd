/**
 * Hardening cases (issue 7): bounded reads, safe and atomic writes, exec timeouts that end daemons, execs
 * interrupted by a suspend, a fork or a destroy, hard-link fidelity, and concurrent calls on one sandbox.
 *
 * Every case that could hang on a provider without the behaviour races its operation against a timer
 * (`within`), so a hang fails that case in seconds, and runs in its own sandbox, destroyed after it, so a
 * blocked reader, a surviving daemon or a stream from a device does not outlive the case.
 */
import { describe, expect } from 'vitest';
import {
  FileTooLargeError,
  InvalidPathError,
  InvalidStateError,
  SandboxNotFoundError,
  TimeoutError,
} from '../errors.js';
import type { ForkRequest } from '../provider.js';
import { DEFAULT_MAX_READ_BYTES, type Sandbox } from '../sandbox.js';
import { RUN_LABEL, type SuiteContext, unless } from './context.js';
import {
  describeError,
  expectAborted,
  expectError,
  randomData,
  randomSuffix,
  run,
  sha256,
  sha256Inside,
  shellQuote,
  text,
  waitForFile,
  within,
} from './helpers.js';

/** How long a refusal that must come "at once" (a FIFO, a device) may take, exec round trips included. */
const AT_ONCE_MS = 5_000;
/** How long an exec past its timeout or abort may take to settle, killing its processes included. */
const SETTLE_MS = 15_000;
const MIB = 1024 * 1024;

export function describeHardening(suite: SuiteContext): void {
  const { capabilities } = suite;
  const noSymlinks = unless(capabilities.symlinks, capabilities, 'symlinks');
  const noSuspend = capabilities.suspend === 'none' ? "provider declares suspend: 'none'" : undefined;
  const noFork = capabilities.fork === 'none' ? "provider declares fork: 'none'" : undefined;

  const fork = async (source: Sandbox): Promise<Sandbox> => {
    const request: ForkRequest = { labels: { [RUN_LABEL]: suite.runId } };
    return suite.track(await source.fork(request));
  };

  describe('hardening: bounded reads', () => {
    const sandbox = suite.shared();

    suite.test(
      'readFile over maxBytes throws FileTooLargeError with size and maxBytes; a larger maxBytes reads it',
      async () => {
        const box = sandbox();
        const size = 100 * 1024;
        await run(box, `mkdir -p bounded && head -c ${size} /dev/urandom > bounded/100k.bin`);
        const path = `${box.workdir}/bounded/100k.bin`;
        const error = await expectError(
          () => within(box.readFile('bounded/100k.bin', { maxBytes: 1000 }), AT_ONCE_MS, 'readFile'),
          FileTooLargeError,
          'readFile of 100 KiB with maxBytes 1000',
        );
        expect(error.size).toBe(size);
        expect(error.maxBytes).toBe(1000);
        expect(error.path).toBe(path);
        expect(error.sandboxId).toBe(box.id);
        await expectError(
          () => box.readFile('bounded/100k.bin', { maxBytes: size - 1 }),
          FileTooLargeError,
          'readFile with maxBytes one byte short',
        );
        const expected = await sha256Inside(box, 'bounded/100k.bin');
        // A file of exactly maxBytes is not over it.
        expect(sha256(await box.readFile('bounded/100k.bin', { maxBytes: size }))).toBe(expected);
        expect(sha256(await box.readFile('bounded/100k.bin', { maxBytes: 10 * MIB }))).toBe(expected);
        expect(sha256(await box.readFile('bounded/100k.bin'))).toBe(expected);
      },
    );

    suite.test(
      `readFile of a sparse file over the default cap (${DEFAULT_MAX_READ_BYTES} bytes) throws FileTooLargeError`,
      async () => {
        const box = sandbox();
        const megabytes = DEFAULT_MAX_READ_BYTES / MIB + 1;
        // Sparse: it costs no disk, and a provider that reads before checking the size shows it in memory.
        await run(
          box,
          `mkdir -p bounded && dd if=/dev/zero of=bounded/sparse bs=${MIB} count=0 seek=${megabytes}`,
        );
        const error = await expectError(
          () => within(box.readFile('bounded/sparse'), 10_000, 'readFile of the sparse file'),
          FileTooLargeError,
          `readFile of a ${megabytes} MiB sparse file without maxBytes`,
        );
        expect(error.size).toBe(megabytes * MIB);
        expect(error.maxBytes).toBe(DEFAULT_MAX_READ_BYTES);
        await run(box, 'rm bounded/sparse');
      },
    );

    suite.test('readFile of a directory throws InvalidPathError', async () => {
      const box = sandbox();
      await run(box, 'mkdir -p bounded/dir');
      for (const path of ['bounded/dir', box.workdir, '/tmp', '/']) {
        await expectError(
          () => within(box.readFile(path), AT_ONCE_MS, `readFile(${path})`),
          InvalidPathError,
          `readFile of the directory ${path}`,
        );
      }
    });

    suite.test(
      'readFile of a device throws InvalidPathError at once: /dev/null, then /dev/zero',
      async () => {
        const box = await suite.create({ labels: { purpose: 'readFile devices' } });
        // /dev/null first: a provider that reads devices fails here on 0 bytes, before /dev/zero could
        // stream into the caller's memory.
        await expectError(
          () => within(box.readFile('/dev/null'), AT_ONCE_MS, 'readFile(/dev/null)'),
          InvalidPathError,
          'readFile of /dev/null',
        );
        const error = await expectError(
          () =>
            within(
              box.readFile('/dev/zero', { maxBytes: MIB, timeoutMs: AT_ONCE_MS }),
              AT_ONCE_MS,
              'readFile(/dev/zero)',
            ),
          InvalidPathError,
          'readFile of /dev/zero',
        );
        expect(error.path).toBe('/dev/zero');
      },
    );

    suite.test('readFile of a FIFO throws InvalidPathError at once, without blocking on it', async () => {
      const box = await suite.create({ labels: { purpose: 'readFile FIFO' } });
      await run(box, 'mkfifo reader.fifo');
      const error = await expectError(
        () => within(box.readFile('reader.fifo', { timeoutMs: AT_ONCE_MS }), AT_ONCE_MS, 'readFile(FIFO)'),
        InvalidPathError,
        'readFile of a FIFO with no writer',
      );
      expect(error.path).toBe(`${box.workdir}/reader.fifo`);
      await run(box, 'test -p reader.fifo');
    });

    suite.test('readFile and writeFile of a unix socket throw InvalidPathError at once', async (context) => {
      const box = await suite.create({ labels: { purpose: 'socket' } });
      if (!(await makeSocket(box, 'unix.sock'))) {
        context.skip('no python3 or perl in the sandbox to create a unix socket with');
      }
      await expectError(
        () => within(box.readFile('unix.sock'), AT_ONCE_MS, 'readFile(socket)'),
        InvalidPathError,
        'readFile of a unix socket',
      );
      await expectError(
        () => within(box.writeFile('unix.sock', 'x'), AT_ONCE_MS, 'writeFile(socket)'),
        InvalidPathError,
        'writeFile onto a unix socket',
      );
      await run(box, 'test -S unix.sock');
    });

    suite.test(
      'readFile and writeFile through a symlink to a device or a FIFO throw InvalidPathError at once',
      async () => {
        const box = await suite.create({ labels: { purpose: 'symlink to special files' } });
        await run(
          box,
          'mkfifo target.fifo && ln -s /dev/null to-null && ln -s /dev/zero to-zero && ln -s target.fifo to-fifo',
        );
        // to-null first, for the same reason as /dev/null before /dev/zero above.
        await expectError(
          () => within(box.readFile('to-null'), AT_ONCE_MS, 'readFile(link to /dev/null)'),
          InvalidPathError,
          'readFile of a symlink to /dev/null',
        );
        await expectError(
          () =>
            within(
              box.readFile('to-zero', { maxBytes: MIB, timeoutMs: AT_ONCE_MS }),
              AT_ONCE_MS,
              'readFile(link to /dev/zero)',
            ),
          InvalidPathError,
          'readFile of a symlink to /dev/zero',
        );
        await expectError(
          () => within(box.readFile('to-fifo'), AT_ONCE_MS, 'readFile(link to FIFO)'),
          InvalidPathError,
          'readFile of a symlink to a FIFO',
        );
        await expectError(
          () => within(box.writeFile('to-null', 'x'), AT_ONCE_MS, 'writeFile(link to /dev/null)'),
          InvalidPathError,
          'writeFile onto a symlink to /dev/null',
        );
        await expectError(
          () => within(box.writeFile('to-fifo', 'x'), AT_ONCE_MS, 'writeFile(link to FIFO)'),
          InvalidPathError,
          'writeFile onto a symlink to a FIFO',
        );
        await run(box, 'test -L to-fifo && test -p target.fifo && test -L to-null');
      },
      noSymlinks,
    );

    suite.test('readFile with an already aborted signal rejects with its reason', async () => {
      const box = sandbox();
      await box.writeFile('bounded/aborted-read.txt', 'content');
      const reason = new Error('aborted before readFile');
      await expectAborted(
        within(
          box.readFile('bounded/aborted-read.txt', { signal: AbortSignal.abort(reason) }),
          AT_ONCE_MS,
          'readFile',
        ),
        reason,
        'readFile with an aborted signal',
      );
    });
  });

  describe('hardening: safe writes', () => {
    const sandbox = suite.shared();

    suite.test('writeFile onto a FIFO throws InvalidPathError at once and leaves it a FIFO', async () => {
      const box = await suite.create({ labels: { purpose: 'writeFile FIFO' } });
      await run(box, 'mkfifo writer.fifo');
      const error = await expectError(
        () => within(box.writeFile('writer.fifo', 'data'), AT_ONCE_MS, 'writeFile(FIFO)'),
        InvalidPathError,
        'writeFile onto a FIFO with no reader',
      );
      expect(error.path).toBe(`${box.workdir}/writer.fifo`);
      await run(box, 'test -p writer.fifo');
    });

    suite.test('writeFile onto a device or a directory throws InvalidPathError', async () => {
      const box = sandbox();
      await expectError(
        () => within(box.writeFile('/dev/null', 'data'), AT_ONCE_MS, 'writeFile(/dev/null)'),
        InvalidPathError,
        'writeFile onto /dev/null',
      );
      await run(box, 'test -c /dev/null');
      await run(box, 'mkdir -p safe/dir && echo inside > safe/dir/kept.txt');
      await expectError(
        () => within(box.writeFile('safe/dir', 'data'), AT_ONCE_MS, 'writeFile(directory)'),
        InvalidPathError,
        'writeFile onto a directory',
      );
      expect(await run(box, 'cat safe/dir/kept.txt')).toBe('inside\n');
    });

    suite.test(
      'writeFile through a symlink replaces its target and leaves the link a link; a dangling one creates its target',
      async () => {
        const box = sandbox();
        await box.writeFile('safe/links/target.txt', 'old target');
        await run(
          box,
          'cd safe/links && ln -s target.txt relative && ln -s "$PWD/target.txt" absolute && ' +
            'ln -s made-by-write.txt dangling && mkdir -p real-dir && ln -s real-dir dir-link',
        );
        await box.writeFile('safe/links/relative', 'through the relative link');
        await expectSymlink(box, 'safe/links/relative');
        expect((await run(box, 'readlink safe/links/relative')).trim()).toBe('target.txt');
        expect(await run(box, 'cat safe/links/target.txt')).toBe('through the relative link');

        await box.writeFile('safe/links/absolute', 'through the absolute link');
        await expectSymlink(box, 'safe/links/absolute');
        expect(await run(box, 'cat safe/links/target.txt')).toBe('through the absolute link');

        await box.writeFile('safe/links/dangling', 'created through a dangling link');
        await expectSymlink(box, 'safe/links/dangling');
        expect((await run(box, 'readlink safe/links/dangling')).trim()).toBe('made-by-write.txt');
        expect(await run(box, 'cat safe/links/made-by-write.txt')).toBe('created through a dangling link');
        expect(await box.readFile('safe/links/dangling', 'utf8')).toBe('created through a dangling link');

        await box.writeFile('safe/links/dir-link/file.txt', 'under a linked directory');
        await expectSymlink(box, 'safe/links/dir-link');
        expect(await run(box, 'cat safe/links/real-dir/file.txt')).toBe('under a linked directory');
      },
      noSymlinks,
    );

    suite.test(
      "writeFile through a symlink without mode keeps the target's mode",
      async () => {
        const box = sandbox();
        await box.writeFile('safe/modes/tool.sh', '#!/bin/sh\necho v1\n', { mode: 0o750 });
        await run(box, 'ln -s tool.sh safe/modes/tool-link');
        await box.writeFile('safe/modes/tool-link', '#!/bin/sh\necho v2\n');
        expect((await run(box, 'stat -c %a safe/modes/tool.sh')).trim()).toBe('750');
        await expectSymlink(box, 'safe/modes/tool-link');
        expect(await run(box, './safe/modes/tool-link')).toBe('v2\n');
      },
      unless(capabilities.symlinks, capabilities, 'symlinks') ??
        unless(capabilities.fileModes, capabilities, 'fileModes'),
    );

    suite.test(
      'writeFile replaces the file: another hard link to the old file keeps the old content',
      async () => {
        const box = sandbox();
        await box.writeFile('safe/hard/name.txt', 'old');
        await run(box, 'ln safe/hard/name.txt safe/hard/other-name.txt');
        await box.writeFile('safe/hard/name.txt', 'new');
        expect(await run(box, 'cat safe/hard/name.txt')).toBe('new');
        expect(await run(box, 'cat safe/hard/other-name.txt')).toBe('old');
      },
    );

    suite.test(
      'writeFile is atomic: a reader hashing the file while it is rewritten sees only the old or the new content',
      async () => {
        const box = sandbox();
        const contents = [randomData(4 * MIB), randomData(4 * MIB)];
        const hashes = contents.map(sha256);
        await box.writeFile('safe/atomic/file.bin', contents[0]!);
        // One exec hashes the file in a loop until told to stop (or a bound), so the reads overlap the writes.
        const reader = box.exec(
          'cd safe/atomic && rm -f stop && echo > reading && i=0 && ' +
            'while [ ! -e stop ] && [ $i -lt 3000 ]; do sha256sum file.bin 2>&1; i=$((i + 1)); done',
          { timeoutMs: 60_000 },
        );
        reader.catch(() => undefined);
        await waitForFile(box, 'safe/atomic/reading', 30_000);
        const rounds = 16;
        for (let round = 1; round <= rounds; round++) {
          await box.writeFile('safe/atomic/file.bin', contents[round % 2]!);
        }
        await box.writeFile('safe/atomic/stop', '');
        const result = await within(reader, 30_000, 'the hashing exec');
        expect(result.exitCode, result.stderr).toBe(0);
        const seen = result.stdout
          .split('\n')
          .filter(Boolean)
          .map((line) => line.split(' ')[0]!);
        const foreign = seen.filter((hash) => !hashes.includes(hash));
        expect(
          [...new Set(foreign)].map((hash) =>
            result.stdout.split('\n').find((line) => line.startsWith(hash)),
          ),
          `of ${seen.length} reads, ${foreign.length} saw neither the old nor the new content`,
        ).toEqual([]);
        // Without reads during the writes the case could not fail.
        expect(seen.length, 'the reader barely ran while the file was rewritten').toBeGreaterThanOrEqual(5);
        expect(await sha256Inside(box, 'safe/atomic/file.bin')).toBe(hashes[rounds % 2]);
      },
    );

    suite.test(
      'writeFile with an already aborted signal rejects with its reason and keeps the old content',
      async () => {
        const box = sandbox();
        await box.writeFile('safe/aborted.txt', 'old content');
        const reason = new Error('aborted before writeFile');
        await expectAborted(
          within(
            box.writeFile('safe/aborted.txt', 'new content', { signal: AbortSignal.abort(reason) }),
            AT_ONCE_MS,
            'writeFile',
          ),
          reason,
          'writeFile with an aborted signal',
        );
        expect(await run(box, 'cat safe/aborted.txt')).toBe('old content');
      },
    );

    suite.test(
      'a writeFile aborted in flight leaves the old content, or completes with the new',
      async () => {
        const box = sandbox();
        const contents = [randomData(8 * MIB), randomData(8 * MIB)];
        const hashes = contents.map(sha256);
        await box.writeFile('safe/abort-in-flight.bin', contents[0]!);
        let current = 0;
        for (const delayMs of [0, 5, 20, 60]) {
          const next = 1 - current;
          const controller = new AbortController();
          const reason = new Error(`aborted after ${delayMs} ms`);
          const pending = box.writeFile('safe/abort-in-flight.bin', contents[next]!, {
            signal: controller.signal,
          });
          setTimeout(() => controller.abort(reason), delayMs);
          const outcome = await within(
            pending.then(
              () => 'completed' as const,
              (error: unknown) => error,
            ),
            30_000,
            `writeFile aborted after ${delayMs} ms`,
          );
          const hash = await sha256Inside(box, 'safe/abort-in-flight.bin');
          if (outcome === 'completed') {
            expect(
              hash,
              `writeFile resolved (abort after ${delayMs} ms) but the file is not the new content`,
            ).toBe(hashes[next]);
            current = next;
          } else {
            expect(
              outcome === reason || (outcome as Error).name === 'AbortError',
              `abort after ${delayMs} ms: ${describeError(outcome)}`,
            ).toBe(true);
            expect(hash, `writeFile rejected (abort after ${delayMs} ms) but the old content is gone`).toBe(
              hashes[current],
            );
          }
        }
      },
    );
  });

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

  describe('hardening: hard links', () => {
    const linkState = async (box: Sandbox) => {
      const [a, b] = (await run(box, 'stat -c "%i %h" links/a links/b')).trim().split('\n');
      return {
        sameInode: a!.split(' ')[0] === b!.split(' ')[0],
        links: [a!.split(' ')[1], b!.split(' ')[1]],
      };
    };
    const expectLinked = async (box: Sandbox, when: string) => {
      expect(await linkState(box), `links/a and links/b ${when}`).toEqual({
        sameInode: true,
        links: ['2', '2'],
      });
    };
    const makeLinks = async (box: Sandbox) => {
      await run(box, "mkdir -p links && printf 'one\\n' > links/a && ln links/a links/b");
      await expectLinked(box, 'right after ln');
    };

    suite.test(
      'two names of one file stay one file across suspend and resume',
      async () => {
        const box = await suite.create({ labels: { purpose: 'hard links suspend' } });
        await makeLinks(box);
        await box.suspend();
        await box.resume();
        await expectLinked(box, 'after suspend and resume');
        await run(box, 'echo two >> links/a');
        expect(await run(box, 'cat links/b')).toBe('one\ntwo\n');
      },
      unless(capabilities.hardLinks, capabilities, 'hardLinks') ?? noSuspend,
    );

    suite.test(
      'two names of one file stay one file after a fork, in the child and in the source, each isolated',
      async () => {
        const source = await suite.create({ labels: { purpose: 'hard links fork' } });
        await makeLinks(source);
        const child = await fork(source);
        await expectLinked(child, 'in the child');
        await expectLinked(source, 'in the source after the fork');
        await run(child, 'echo child >> links/b');
        await run(source, 'echo source >> links/a');
        expect(await run(child, 'cat links/a'), 'in the child, a write through b seen through a').toBe(
          'one\nchild\n',
        );
        expect(await run(child, 'cat links/b')).toBe('one\nchild\n');
        expect(await run(source, 'cat links/b'), 'in the source, a write through a seen through b').toBe(
          'one\nsource\n',
        );
        expect(await run(source, 'cat links/a')).toBe('one\nsource\n');
      },
      unless(capabilities.hardLinks, capabilities, 'hardLinks') ?? noFork,
    );

    suite.test(
      'each name of a hard-linked file keeps its content across suspend, resume and fork (any hardLinks)',
      async () => {
        const box = await suite.create({ labels: { purpose: 'hard link contents' } });
        await run(box, "mkdir -p links && printf 'one\\n' > links/a && ln links/a links/b");
        if (capabilities.suspend !== 'none') {
          await box.suspend();
          await box.resume();
          expect(await run(box, 'cat links/a links/b')).toBe('one\none\n');
        }
        if (capabilities.fork !== 'none') {
          const child = await fork(box);
          expect(await run(child, 'cat links/a links/b')).toBe('one\none\n');
          expect(await run(box, 'cat links/a links/b')).toBe('one\none\n');
        }
      },
      noSuspend && noFork ? `${noSuspend}, ${noFork}` : undefined,
    );
  });

  describe('hardening: concurrency', () => {
    const sandbox = suite.shared();

    suite.test(
      '20 concurrent exec, readFile and writeFile calls on one sandbox all succeed, correctly',
      async () => {
        const box = sandbox();
        const count = 20;
        const payload = (index: number) => text(`payload ${index} ${'x'.repeat(index * 997)}\n`);
        await run(box, 'mkdir -p concurrent');
        for (let index = 0; index < count; index++) {
          if (index % 3 === 2) await box.writeFile(`concurrent/read-${index}.txt`, payload(index));
        }
        const settled = await within(
          Promise.allSettled(
            Array.from({ length: count }, async (_, index) => {
              if (index % 3 === 0) {
                const result = await box.exec([
                  'sh',
                  '-c',
                  `echo exec-$1; ls concurrent > /dev/null`,
                  'sh',
                  `${index}`,
                ]);
                expect(result.exitCode).toBe(0);
                expect(result.stdout).toBe(`exec-${index}\n`);
              } else if (index % 3 === 1) {
                await box.writeFile(`concurrent/written-${index}.txt`, payload(index));
              } else {
                expect(sha256(await box.readFile(`concurrent/read-${index}.txt`))).toBe(
                  sha256(payload(index)),
                );
              }
            }),
          ),
          60_000,
          `${count} concurrent calls`,
        );
        const failures = settled.flatMap((result, index) =>
          result.status === 'rejected' ? [`call ${index}: ${describeError(result.reason)}`] : [],
        );
        expect(failures, 'concurrent calls failed').toEqual([]);
        for (let index = 1; index < count; index += 3) {
          expect(await sha256Inside(box, `concurrent/written-${index}.txt`), `written-${index}.txt`).toBe(
            sha256(payload(index)),
          );
        }
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

/** Asserts that `path` is still a symlink after a writeFile through it (not replaced by a regular file). */
async function expectSymlink(box: Sandbox, path: string): Promise<void> {
  const quoted = shellQuote(path);
  const kind = (
    await run(box, `if [ -L ${quoted} ]; then echo symlink; else stat -c %F ${quoted}; fi`)
  ).trim();
  expect(kind, `writeFile through ${path} replaced the symlink instead of writing its target`).toBe(
    'symlink',
  );
}

/**
 * Creates a unix socket at `path` with python3 or perl, whichever the sandbox has (a bound socket's file
 * stays after its process exits). Returns false when neither exists (a busybox image has no tool for it).
 */
async function makeSocket(box: Sandbox, path: string): Promise<boolean> {
  const script = [
    'p="$1"',
    'if command -v python3 >/dev/null 2>&1; then',
    `  python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$p" 2>/dev/null`,
    'fi',
    'if [ ! -S "$p" ] && command -v perl >/dev/null 2>&1; then',
    `  perl -MIO::Socket::UNIX -e 'IO::Socket::UNIX->new(Local => $ARGV[0], Listen => 1) or exit 1' "$p" 2>/dev/null`,
    'fi',
    'if [ -S "$p" ]; then echo made; else echo none; fi',
  ].join('\n');
  const result = await box.exec(['sh', '-c', script, 'sh', path]);
  return result.stdout.trim() === 'made';
}

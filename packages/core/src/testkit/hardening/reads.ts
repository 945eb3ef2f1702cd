/** Hardening: reads are bounded, and never block on a FIFO, a device or a socket. */
import { describe, expect } from 'vitest';
import { FileTooLargeError, InvalidPathError } from '../../errors.js';
import { DEFAULT_MAX_READ_BYTES, type Sandbox } from '../../sandbox.js';
import { expectAborted, expectError, run, sha256, sha256Inside, within } from '../helpers.js';
import { AT_ONCE_MS, type HardeningContext, MIB } from './shared.js';

export function describeBoundedReads(hardening: HardeningContext): void {
  const { suite, noSymlinks } = hardening;
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

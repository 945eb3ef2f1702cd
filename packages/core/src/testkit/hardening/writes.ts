/** Hardening: writes go through symlinks as the caller meant, never block, and are atomic. */
import { describe, expect } from 'vitest';
import { InvalidPathError } from '../../errors.js';
import type { Sandbox } from '../../sandbox.js';
import { unless } from '../context.js';
import {
  describeError,
  expectAborted,
  expectError,
  randomData,
  run,
  sha256,
  sha256Inside,
  shellQuote,
  waitForFile,
  within,
} from '../helpers.js';
import { AT_ONCE_MS, type HardeningContext, MIB } from './shared.js';

export function describeSafeWrites(hardening: HardeningContext): void {
  const { suite, capabilities, noSymlinks } = hardening;
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

import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect } from 'vitest';
import { FileNotFoundError, InvalidPathError } from '../errors.js';
import type { Sandbox } from '../sandbox.js';
import { type SuiteContext, unless } from './context.js';
import { allByteValues, expectError, randomData, run, sha256, sha256Inside, shellQuote } from './helpers.js';

export function describeFiles(suite: SuiteContext): void {
  const { capabilities } = suite;

  describe('files', () => {
    const sandbox = suite.shared();

    suite.test('round-trips binary data (all 256 byte values) byte-exact', async () => {
      const box = sandbox();
      const data = allByteValues();
      await box.writeFile('binary/all-bytes.bin', data);
      expect([...(await box.readFile('binary/all-bytes.bin'))]).toEqual([...data]);
      expect(await sha256Inside(box, 'binary/all-bytes.bin')).toBe(sha256(data));
      const random = randomData(1024 * 1024 + 7);
      await box.writeFile('binary/random.bin', random);
      expect(sha256(await box.readFile('binary/random.bin'))).toBe(sha256(random));
    });

    suite.test('writes and reads an empty file', async () => {
      const box = sandbox();
      await box.writeFile('empty.txt', new Uint8Array());
      expect((await box.readFile('empty.txt')).byteLength).toBe(0);
      expect((await run(box, 'wc -c < empty.txt')).trim()).toBe('0');
      await box.writeFile('shrunk.txt', 'longer content');
      await box.writeFile('shrunk.txt', '');
      expect((await run(box, 'wc -c < shrunk.txt')).trim()).toBe('0');
    });

    suite.test(`round-trips a large random file (${suite.largeFileBytes} bytes)`, async () => {
      const box = sandbox();
      const data = randomData(suite.largeFileBytes);
      const expected = sha256(data);
      await box.writeFile('large.bin', data);
      expect((await run(box, 'wc -c < large.bin')).trim()).toBe(String(suite.largeFileBytes));
      expect(await sha256Inside(box, 'large.bin')).toBe(expected);
      const read = await box.readFile('large.bin');
      expect(read.byteLength).toBe(suite.largeFileBytes);
      expect(sha256(read)).toBe(expected);
      await run(box, 'rm large.bin');
    });

    suite.test('handles unicode and spaces in names', async () => {
      const box = sandbox();
      const path = 'dir with space/naïve ☃.txt';
      await box.writeFile(path, 'snow ☃\n');
      expect(await box.readFile(path, 'utf8')).toBe('snow ☃\n');
      expect((await box.exec(['cat', path])).stdout).toBe('snow ☃\n');
      expect(await run(box, `ls ${shellQuote('dir with space')}`)).toBe('naïve ☃.txt\n');
      await run(box, `printf 'from exec' > ${shellQuote('dir with space/ëxec ✓.txt')}`);
      expect(await box.readFile('dir with space/ëxec ✓.txt', 'utf8')).toBe('from exec');
    });

    suite.test('creates missing parent directories, relative and absolute, seen by exec', async () => {
      const box = sandbox();
      await box.writeFile('a/b/c/d.txt', 'deep');
      await run(box, 'test -d a/b/c');
      expect(await run(box, 'cat a/b/c/d.txt')).toBe('deep');
      await box.writeFile(`${box.workdir}/abs/nested/e.txt`, 'absolute');
      expect(await run(box, 'cat abs/nested/e.txt')).toBe('absolute');
      await box.writeFile('/tmp/statebox-conformance/f.txt', 'outside the workdir');
      expect(await run(box, 'cat /tmp/statebox-conformance/f.txt')).toBe('outside the workdir');
      expect(await box.readFile('/tmp/statebox-conformance/f.txt', 'utf8')).toBe('outside the workdir');
      await box.writeFile('a/b/c/d.txt', 'overwritten');
      expect(await box.readFile('a/b/c/d.txt', 'utf8')).toBe('overwritten');
    });

    suite.test(
      'sets modes: mode 0o755 gives 755, an overwrite without mode keeps it, a new file gets 644',
      async () => {
        const box = sandbox();
        const mode = async (path: string) => (await run(box, `stat -c %a ${shellQuote(path)}`)).trim();
        await box.writeFile('modes/run.sh', '#!/bin/sh\necho ran\n', { mode: 0o755 });
        expect(await mode('modes/run.sh')).toBe('755');
        expect(await run(box, './modes/run.sh')).toBe('ran\n');
        await box.writeFile('modes/run.sh', '#!/bin/sh\necho ran again\n');
        expect(await mode('modes/run.sh')).toBe('755');
        expect(await run(box, './modes/run.sh')).toBe('ran again\n');
        await box.writeFile('modes/plain.txt', 'plain');
        expect(await mode('modes/plain.txt')).toBe('644');
        await box.writeFile('modes/private.txt', 'secret', { mode: 0o600 });
        expect(await mode('modes/private.txt')).toBe('600');
        await box.writeFile('modes/run.sh', 'changed', { mode: 0o644 });
        expect(await mode('modes/run.sh')).toBe('644');
      },
      unless(capabilities.fileModes, capabilities, 'fileModes'),
    );

    suite.test(
      'readFile follows symlinks made with ln -s, relative and absolute',
      async () => {
        const box = sandbox();
        await box.writeFile('links/target.txt', 'target content');
        await run(
          box,
          `ln -s target.txt links/relative && ln -s ${box.workdir}/links/target.txt links/absolute`,
        );
        expect(await box.readFile('links/relative', 'utf8')).toBe('target content');
        expect(await box.readFile('links/absolute', 'utf8')).toBe('target content');
        expect((await run(box, 'readlink links/relative')).trim()).toBe('target.txt');
        await run(box, 'ln -s missing.txt links/dangling');
        await expectError(
          () => box.readFile('links/dangling'),
          FileNotFoundError,
          'readFile of a dangling symlink',
        );
      },
      unless(capabilities.symlinks, capabilities, 'symlinks'),
    );

    suite.test('readFile of a missing file throws FileNotFoundError', async () => {
      const box = sandbox();
      const error = await expectError(() => box.readFile('no/such/file.txt'), FileNotFoundError, 'readFile');
      expect(error.path).toBe(`${box.workdir}/no/such/file.txt`);
      await expectError(() => box.readFile('/no-such-dir/file.txt'), FileNotFoundError, 'readFile absolute');
    });

    suite.test('a relative path that climbs out of the workdir throws InvalidPathError', async () => {
      const box = sandbox();
      await expectError(
        () => box.readFile('../../etc/passwd'),
        InvalidPathError,
        "readFile('../../etc/passwd')",
      );
      await expectError(
        () => box.writeFile('../escape.txt', 'x'),
        InvalidPathError,
        "writeFile('../escape.txt')",
      );
      await expectError(() => box.exec('pwd', { cwd: '../..' }), InvalidPathError, "exec with cwd '../..'");
    });

    describe('a symlink to a host path does not escape the sandbox', () => {
      let hostDirectory: string | undefined;
      afterAll(async () => {
        if (hostDirectory) await rm(hostDirectory, { recursive: true, force: true });
      });

      suite.test(
        'readFile and writeFile through it see the sandbox, not the host',
        async () => {
          const box = sandbox();
          hostDirectory = await mkdtemp(join(tmpdir(), 'statebox-conformance-host-'));
          const secretPath = join(hostDirectory, 'secret.txt');
          const secret = `host secret ${Math.random()}`;
          await writeFile(secretPath, secret);
          await run(box, `ln -s ${shellQuote(secretPath)} escape`);

          const seenByExec = (await box.exec('cat escape')).stdout;
          expect(
            await readUnlessMissing(box, 'escape'),
            `readFile followed the link on the host (exec inside sees: ${JSON.stringify(seenByExec)})`,
          ).not.toBe(secret);
          expect(await readUnlessMissing(box, secretPath), `readFile(${secretPath}) read the host`).not.toBe(
            secret,
          );

          // Either outcome is fine for the write (it fails, or lands inside the sandbox); the host file must not change.
          await box.writeFile('escape', 'written through the link').catch(() => undefined);
          expect(await readFile(secretPath, 'utf8')).toBe(secret);
        },
        unless(capabilities.symlinks, capabilities, 'symlinks'),
      );
    });
  });
}

/** The file's text, or undefined when the provider says it does not exist (any other error fails). */
async function readUnlessMissing(box: Sandbox, path: string): Promise<string | undefined> {
  try {
    return await box.readFile(path, 'utf8');
  } catch (error) {
    if (FileNotFoundError.isInstance(error)) return undefined;
    throw error;
  }
}

import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { packTar } from 'modern-tar';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { readArchive } from '../src/archive.js';

const fixtures = join(import.meta.dirname, 'fixtures', 'archives');
let scratch: string;

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'statebox-archive-'));
});

afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

const summary = (entries: Awaited<ReturnType<typeof readArchive>>) =>
  Object.fromEntries(
    entries.map((entry) => [
      entry.path,
      { text: Buffer.from(entry.data).toString('utf8'), x: entry.executable },
    ]),
  );

describe('readArchive (the SDK extractor)', () => {
  test('zip (made by Info-ZIP): regular files with their exec bit; the wrapper directory stripped', async () => {
    const entries = await readArchive(await readFile(join(fixtures, 'skill.zip')));
    const files = summary(entries);
    expect(Object.keys(files).sort()).toEqual(['SKILL.md', 'reference.md', 'scripts/run.sh']);
    expect(files['scripts/run.sh']).toEqual({ text: '#!/bin/sh\necho hi\n', x: true });
    expect(files['SKILL.md']?.x).toBe(false);
    expect(files['reference.md']?.text).toContain('line 200 of the reference\n');
  });

  test('a zip member outside the root rejects the archive', async () => {
    await expect(readArchive(await readFile(join(fixtures, 'unsafe.zip')))).rejects.toThrow('../escape.txt');
  });

  test('PAX tar (Python tarfile default) keeps long and non-ASCII names; bz2 and xz read too', async () => {
    const root = join(scratch, 'pax');
    const longDir = join(root, 'skill', 'd'.repeat(120), 'é'.repeat(40));
    await mkdir(longDir, { recursive: true });
    await writeFile(join(longDir, 'naïve-notes.md'), 'pax');
    await writeFile(join(root, 'skill', 'SKILL.md'), '# skill');
    const expected = {
      'SKILL.md': { text: '# skill', x: false },
      [`${'d'.repeat(120)}/${'é'.repeat(40)}/naïve-notes.md`]: { text: 'pax', x: false },
    };
    for (const flag of ['', '-z', '-j', '-J']) {
      const bytes = execFileSync('tar', [
        '--format=pax',
        ...(flag ? [flag] : []),
        '-C',
        root,
        '-cf',
        '-',
        'skill',
      ]);
      expect(summary(await readArchive(bytes))).toEqual(expected);
    }
  });

  test('bytes that are no archive are an error, not an empty skill', async () => {
    await expect(readArchive(new TextEncoder().encode('not an archive at all'))).rejects.toThrow();
  });

  test('tar and tar.gz: long names, ./ prefixes and modes kept; symlinks dropped', async () => {
    const long = `skill/${'deep/'.repeat(30)}notes.md`;
    const tar = await packTar([
      { header: { name: 'skill/', type: 'directory', size: 0 } },
      { header: { name: './skill/run.sh', size: 3, mode: 0o755 }, body: 'run' },
      { header: { name: long, size: 4 }, body: 'deep' },
      { header: { name: 'skill/link', type: 'symlink', size: 0, linkname: '/etc/passwd' } },
    ]);
    for (const bytes of [tar, gzipSync(tar)]) {
      expect(summary(await readArchive(bytes))).toEqual({
        'run.sh': { text: 'run', x: true },
        [long.slice('skill/'.length)]: { text: 'deep', x: false },
      });
    }
  });

  test('GNU tar long names (type L) are read', async () => {
    const root = join(scratch, 'gnu');
    const deep = join(root, 'a'.repeat(60), 'b'.repeat(60));
    await mkdir(deep, { recursive: true });
    await writeFile(join(deep, 'file.txt'), 'gnu');
    await symlink('/etc/passwd', join(root, 'link'));
    const bytes = execFileSync('tar', ['--format=gnu', '-C', root, '-cf', '-', '.']);
    // With the symlink left out, `aaa…` is the one top directory: the wrapper the SDK strips.
    expect(summary(await readArchive(bytes))).toEqual({
      [`${'b'.repeat(60)}/file.txt`]: { text: 'gnu', x: false },
    });
  });

  test('an absolute tar member rejects the archive', async () => {
    const tar = await packTar([{ header: { name: '/etc/cron.d/x', size: 1 }, body: 'x' }]);
    await expect(readArchive(tar)).rejects.toThrow('/etc/cron.d/x');
  });
});

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

describe('readArchive', () => {
  test('zip (made by Info-ZIP): regular files with their exec bit, deflated or stored; links and directories dropped', async () => {
    const entries = await readArchive(await readFile(join(fixtures, 'skill.zip')));
    const files = summary(entries);
    expect(Object.keys(files).sort()).toEqual([
      'my-skill/SKILL.md',
      'my-skill/reference.md',
      'my-skill/scripts/run.sh',
    ]);
    expect(files['my-skill/scripts/run.sh']).toEqual({ text: '#!/bin/sh\necho hi\n', x: true });
    expect(files['my-skill/SKILL.md']?.x).toBe(false);
    expect(files['my-skill/reference.md']?.text).toContain('line 200 of the reference\n');
  });

  test('a zip member outside the root rejects the archive', async () => {
    await expect(readArchive(await readFile(join(fixtures, 'unsafe.zip')))).rejects.toThrow(
      'unsafe archive member "../escape.txt"',
    );
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
        'skill/run.sh': { text: 'run', x: true },
        [long]: { text: 'deep', x: false },
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
    expect(summary(await readArchive(bytes))).toEqual({
      [`${'a'.repeat(60)}/${'b'.repeat(60)}/file.txt`]: { text: 'gnu', x: false },
    });
  });

  test('an absolute tar member rejects the archive', async () => {
    const tar = await packTar([{ header: { name: '/etc/cron.d/x', size: 1 }, body: 'x' }]);
    await expect(readArchive(tar)).rejects.toThrow('unsafe archive member "/etc/cron.d/x"');
  });
});

import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packTar, readFirstEntry, readTar } from '../src/tar.js';

// Both directions are checked against GNU tar, the reader and writer the archives meet in sandboxes
// and that Docker's archive endpoints agree with.
let directory: string;
beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), 'adapter-kit-tar-'));
});
afterAll(async () => {
  await rm(directory, { recursive: true, force: true });
});

const longName = `${'deep/'.repeat(40)}${'n'.repeat(120)}.txt`;
const binary = Uint8Array.from({ length: 5000 }, (_, index) => (index * 31) % 256);

describe('packTar', () => {
  it('writes files, directories, modes and names past 255 bytes that GNU tar extracts exactly', async () => {
    const archive = await packTar([
      { name: 'dir', type: 'directory', mode: 0o750 },
      { name: 'dir/run.sh', type: 'file', mode: 0o755, data: new TextEncoder().encode('#!/bin/sh\n') },
      { name: 'dir/empty', type: 'file' },
      { name: 'naïve ☃.bin', type: 'file', data: binary },
      { name: longName, type: 'file', data: new TextEncoder().encode('long\n') },
    ]);
    const target = join(directory, 'extracted');
    await mkdir(target);
    await writeFile(join(directory, 'a.tar'), archive);
    execFileSync('tar', ['-x', '--no-same-owner', '-f', join(directory, 'a.tar'), '-C', target]);
    expect((await stat(join(target, 'dir'))).mode & 0o777).toBe(0o750);
    expect((await stat(join(target, 'dir/run.sh'))).mode & 0o777).toBe(0o755);
    expect(await readFile(join(target, 'dir/run.sh'), 'utf8')).toBe('#!/bin/sh\n');
    expect((await readFile(join(target, 'dir/empty'))).byteLength).toBe(0);
    expect(new Uint8Array(await readFile(join(target, 'naïve ☃.bin')))).toEqual(binary);
    expect(await readFile(join(target, longName), 'utf8')).toBe('long\n');
    const listing = execFileSync('tar', ['-t', '-v', '--numeric-owner', '-f', join(directory, 'a.tar')], {
      encoding: 'utf8',
    });
    expect(listing).toMatch(/ 0\/0 /);
  });
});

describe('readTar', () => {
  it('reads what GNU tar writes: files, directories, symlinks, modes and long names', async () => {
    const source = join(directory, 'source');
    await mkdir(join(source, 'sub'), { recursive: true });
    await writeFile(join(source, 'sub/data.bin'), binary, { mode: 0o640 });
    await symlink('sub/data.bin', join(source, 'link'));
    await mkdir(join(source, ...'deep/'.repeat(40).split('/').filter(Boolean)), { recursive: true });
    await writeFile(join(source, longName), 'long\n');
    for (const format of ['gnu', 'pax']) {
      const archive = execFileSync('tar', [
        `--format=${format}`,
        '-c',
        '-f',
        '-',
        '-C',
        source,
        'sub',
        'link',
        longName,
      ]);
      const members = await readTar(archive);
      const byName = new Map(members.map((member) => [member.name.replace(/\/$/, ''), member]));
      expect(byName.get('sub')?.type, format).toBe('directory');
      expect(byName.get('sub/data.bin')?.mode, format).toBe(0o640);
      expect(byName.get('sub/data.bin')?.data, format).toEqual(binary);
      expect(byName.get('link'), format).toMatchObject({ type: 'symlink', linkName: 'sub/data.bin' });
      expect(new TextDecoder().decode(byName.get(longName)?.data), format).toBe('long\n');
    }
  });

  it('readFirstEntry gives the first member only, and nothing for an empty archive', async () => {
    const archive = await packTar([
      { name: 'first.txt', type: 'file', data: new TextEncoder().encode('1') },
      { name: 'second.txt', type: 'file', data: new TextEncoder().encode('2') },
    ]);
    expect(await readFirstEntry(archive)).toMatchObject({ name: 'first.txt', type: 'file', mode: 0o644 });
    expect((await readTar(archive)).map((member) => member.name)).toEqual(['first.txt', 'second.txt']);
    expect(await readFirstEntry(await packTar([]))).toBeUndefined();
  });
});

import {
  FileNotFoundError,
  FileTooLargeError,
  InvalidPathError,
  InvalidStateError,
  TimeoutError,
} from '@statebox/core';
import { beforeAll, describe, expect, it } from 'vitest';
import type { DockerProvider } from '../src/index.js';
import { decoder, encoder, exec, run, skip, useSandboxes } from './helpers.js';

const { provider, created } = useSandboxes();

describe.skipIf(Boolean(skip))(`docker readFile and writeFile${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let instance: DockerProvider;
  let id = '';

  beforeAll(async () => {
    instance = provider();
    id = (await instance.create({})).id;
    created.push(id);
    await run(
      instance,
      id,
      'mkfifo fifo && ln -s /dev/zero zero-link && mkdir dir && ' + 'truncate -s 100G sparse',
    );
  });

  it('refuses devices, FIFOs, directories at once, and a symlink to /dev/zero, with InvalidPathError', async () => {
    for (const path of [
      '/dev/zero',
      '/dev/urandom',
      '/workspace/fifo',
      '/workspace/zero-link',
      '/workspace/dir',
    ]) {
      const started = Date.now();
      const error = await instance.readFile(id, path, { maxBytes: 1024 }).catch((caught: unknown) => caught);
      expect(InvalidPathError.isInstance(error), `${path}: ${String(error)}`).toBe(true);
      expect((error as Error).message).toContain(path);
      expect(Date.now() - started).toBeLessThan(5000);
    }
  });

  it('a file over maxBytes is FileTooLargeError before anything is read: a 100 GB sparse file', async () => {
    const error = await instance
      .readFile(id, '/workspace/sparse', { maxBytes: 1024 * 1024 })
      .catch((caught: unknown) => caught);
    expect(FileTooLargeError.isInstance(error)).toBe(true);
    expect((error as FileTooLargeError).size).toBe(100 * 1024 ** 3);
    expect((error as Error).message).toMatch(/maxBytes/);
    await instance.writeFile(id, '/workspace/exact', new Uint8Array(4096).fill(7));
    expect((await instance.readFile(id, '/workspace/exact', { maxBytes: 4096 })).byteLength).toBe(4096);
    await expect(instance.readFile(id, '/workspace/exact', { maxBytes: 4095 })).rejects.toSatisfy(
      FileTooLargeError.isInstance,
    );
  });

  it('readFile honours timeoutMs and signal', async () => {
    await instance.writeFile(id, '/workspace/big', new Uint8Array(32 * 1024 * 1024).fill(1));
    const timedOut = await instance
      .readFile(id, '/workspace/big', { maxBytes: 64 * 1024 * 1024, timeoutMs: 1 })
      .catch((caught: unknown) => caught);
    expect(TimeoutError.isInstance(timedOut)).toBe(true);
    const controller = new AbortController();
    controller.abort(new Error('not now'));
    await expect(
      instance.readFile(id, '/workspace/big', { maxBytes: 64 * 1024 * 1024, signal: controller.signal }),
    ).rejects.toThrow('not now');
  });

  it('writeFile through a symlink replaces its target and keeps the link; a dangling one creates its target', async () => {
    await run(
      instance,
      id,
      'echo old > target && chmod 640 target && ln -s target link && ln -s made dangling',
    );
    await instance.writeFile(id, '/workspace/link', encoder.encode('new\n'));
    expect(await run(instance, id, 'readlink link; cat target; stat -c %a target')).toBe(
      'target\nnew\n640\n',
    );
    await instance.writeFile(id, '/workspace/dangling', encoder.encode('created\n'));
    expect(await run(instance, id, 'readlink dangling; cat made; stat -c %a made')).toBe(
      'made\ncreated\n644\n',
    );
  });

  it('writeFile keeps the owner and mode of the file it replaces, and refuses FIFOs, devices and directories', async () => {
    await run(instance, id, 'echo x > owned && chown 1234:5678 owned && chmod 4755 owned');
    await instance.writeFile(id, '/workspace/owned', encoder.encode('y\n'));
    expect(await run(instance, id, 'stat -c "%u:%g %a" owned; cat owned')).toBe('1234:5678 4755\ny\n');
    for (const path of ['/workspace/fifo', '/dev/null', '/workspace/dir']) {
      const started = Date.now();
      const error = await instance
        .writeFile(id, path, encoder.encode('z'))
        .catch((caught: unknown) => caught);
      expect(InvalidPathError.isInstance(error), `${path}: ${String(error)}`).toBe(true);
      expect(Date.now() - started).toBeLessThan(5000);
    }
    expect(await run(instance, id, 'test -p fifo && test -d dir && echo intact')).toBe('intact\n');
  });

  it('writeFile is atomic: a reader never sees a mix, an empty file, or a leftover temporary file', async () => {
    const size = 4 * 1024 * 1024;
    const first = new Uint8Array(size).fill(0x61);
    const second = new Uint8Array(size).fill(0x62);
    await instance.writeFile(id, '/workspace/atomic', first);
    await instance.writeFile(id, '/workspace/ref-a', first);
    await instance.writeFile(id, '/workspace/ref-b', second);
    // The reader runs inside the sandbox, as an agent's command would: every read must be one whole content.
    const reader = exec(
      instance,
      id,
      'reads=0 mixed=0; while [ ! -e stop ]; do reads=$((reads+1)); cat atomic > /tmp/snap; cmp -s /tmp/snap ref-a || cmp -s /tmp/snap ref-b || mixed=$((mixed+1)); done; echo $reads $mixed',
    );
    for (let round = 0; round < 8; round++) {
      await instance.writeFile(id, '/workspace/atomic', round % 2 === 0 ? second : first);
    }
    await run(instance, id, 'touch stop');
    const [reads, mixed] = (await reader).stdout.trim().split(' ').map(Number);
    expect(reads).toBeGreaterThan(3);
    expect(mixed).toBe(0);
    expect(await run(instance, id, 'ls -a | grep -c statebox-write || true')).toBe('0\n');
  });

  it('writeFile honours timeoutMs and signal, and then leaves the old content', async () => {
    await instance.writeFile(id, '/workspace/kept', encoder.encode('old\n'));
    const timedOut = await instance
      .writeFile(id, '/workspace/kept', new Uint8Array(64 * 1024 * 1024), { timeoutMs: 1 })
      .catch((caught: unknown) => caught);
    expect(TimeoutError.isInstance(timedOut)).toBe(true);
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error('abandoned')), 5);
    await expect(
      instance.writeFile(id, '/workspace/kept', new Uint8Array(64 * 1024 * 1024), {
        signal: controller.signal,
      }),
    ).rejects.toThrow('abandoned');
    expect(decoder.decode(await instance.readFile(id, '/workspace/kept', { maxBytes: 1024 }))).toBe('old\n');
  });

  it('writeFile on a suspended sandbox is InvalidStateError; readFile still reads it', async () => {
    const other = await instance.create({});
    created.push(other.id);
    await instance.writeFile(other.id, '/workspace/a', encoder.encode('a\n'));
    await instance.suspend(other.id);
    await expect(instance.writeFile(other.id, '/workspace/a', encoder.encode('b'))).rejects.toSatisfy(
      InvalidStateError.isInstance,
    );
    expect(decoder.decode(await instance.readFile(other.id, '/workspace/a', { maxBytes: 1024 }))).toBe('a\n');
    await expect(instance.readFile(other.id, '/workspace/none', { maxBytes: 1024 })).rejects.toSatisfy(
      FileNotFoundError.isInstance,
    );
  });
});

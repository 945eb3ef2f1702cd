import { createStatebox } from '@statebox/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CloudflareProvider } from '../src/index.js';
import { type LocalWorker, localWorkerSkipReason, startLocalWorker } from '../src/testing.js';

/**
 * The request sequence the real @cloudflare/sandbox 0.12.10 Durable Object sends to the container's
 * control server, as recorded in research/cloudflare-local.md. The control server is the local setup's
 * one stand-in; it logs every request, and this test fails when an SDK upgrade sends something else,
 * so that the stand-in is brought up to date rather than silently diverging.
 */
type Entry = {
  method?: string;
  path?: string;
  sandboxId?: string | null;
  contentType?: string | null;
  body?: Record<string, unknown>;
  unknownRoute?: string;
};

const LOG = '/var/log/statebox/control.jsonl';
const skip = await localWorkerSkipReason();

describe.skipIf(skip)(
  `the SDK's requests to the container match the recorded protocol${skip ? ` (skipped: ${skip})` : ''}`,
  () => {
    let worker: LocalWorker;
    let provider: CloudflareProvider;
    beforeAll(async () => {
      worker = await startLocalWorker();
      provider = new CloudflareProvider({
        url: worker.url,
        token: worker.token,
        requestTimeoutMs: 60_000,
        lifecycleTimeoutMs: 300_000,
      });
    }, 240_000);
    afterAll(() => worker?.stop(), 120_000);

    const readLog = async (sandboxId: string): Promise<Entry[]> => {
      // Through exec rather than readFile: reading the log appends to it while it is read.
      const result = await provider.exec(sandboxId, {
        command: ['cat', LOG],
        cwd: '/',
        maxOutputBytes: 64 * 1024 * 1024,
      });
      const text = new TextDecoder().decode(result.stdout);
      return text
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as Entry);
    };
    const key = (entry: Entry) => `${entry.method} ${entry.path}`;

    it('start-up, exec, writeFile, readFile, and a backup for a fork, in the recorded order and shapes', async () => {
      const statebox = createStatebox({ provider });
      const box = await statebox.create({ labels: { purpose: 'contract' } });
      try {
        await box.exec('echo contract');
        await box.writeFile('contract.txt', 'contract');
        expect(await box.readFile('contract.txt', { encoding: 'utf8' })).toBe('contract');
        const child = await box.fork();
        try {
          const source = await readLog(box.id);
          expect(
            source.filter((entry) => entry.unknownRoute),
            'routes the control server does not know',
          ).toEqual([]);
          // The readiness probes (GET /) come from the containers library, without the SDK's headers.
          for (const entry of source.filter((candidate) => candidate.path?.startsWith('/api/'))) {
            expect(entry.sandboxId, `${key(entry)} carries X-Sandbox-Id`).toBeTruthy();
            if (entry.method === 'POST')
              expect(entry.contentType, `${key(entry)} content type`).toBe('application/json');
          }
          const keys = source.map(key);
          expect(keys.slice(0, 2)).toEqual(['GET /', 'GET /']);
          // The version check runs beside the session's creation, in either order.
          expect(keys).toContain('GET /api/version');
          expectInOrder(keys, [
            'POST /api/session/create',
            'POST /api/execute/stream',
            'POST /api/write',
            'POST /api/read/stream',
          ]);

          const session = source.find((entry) => key(entry) === 'POST /api/session/create')!;
          expect(session.body).toMatchObject({ cwd: '/workspace' });
          expect(String(session.body!.id)).toMatch(/^sandbox-/);
          const stream = source.find((entry) => key(entry) === 'POST /api/execute/stream')!;
          expect(Object.keys(stream.body!).sort()).toEqual(['command', 'env', 'sessionId']);
          const write = source.find(
            (entry) => key(entry) === 'POST /api/write' && entry.body?.encoding === 'base64',
          )!;
          expect(Object.keys(write.body!).sort()).toEqual(['content', 'encoding', 'path', 'sessionId']);

          // createBackup({ dir: '/workspace', localBucket: true }) on the running source.
          const backupStart = source.findIndex((entry) => key(entry) === 'POST /api/backup/create');
          expect(backupStart, 'POST /api/backup/create').toBeGreaterThan(0);
          const backup = source[backupStart]!;
          expect(backup.body).toMatchObject({
            dir: '/workspace',
            gitignore: false,
            excludes: [],
            compression: { format: 'lz4', threads: 8 },
          });
          expect(String(backup.body!.archivePath)).toMatch(/^\/var\/backups\/[0-9a-f-]+\.sqsh$/);
          const backupSession = source
            .slice(0, backupStart)
            .reverse()
            .find((entry) => key(entry) === 'POST /api/session/create')!;
          expect(String(backupSession.body!.id)).toMatch(/^__sandbox_backup_/);
          expect(backupSession.body).toMatchObject({ cwd: '/' });
          const after = source.slice(backupStart + 1);
          expectInOrder(after.map(key), [
            'POST /api/read/stream',
            'POST /api/execute',
            'POST /api/session/delete',
          ]);
          expect(after.find((entry) => key(entry) === 'POST /api/read/stream')!.body).toMatchObject({
            path: backup.body!.archivePath,
          });
          expect(after.find((entry) => key(entry) === 'POST /api/execute')!.body).toMatchObject({
            command: expect.stringContaining('rm -f'),
            origin: 'internal',
          });

          // restoreBackup(handle) into the child: the archive is written whole, then unsquashfs extracts it.
          const restore = (await readLog(child.id)).map((entry) => ({
            key: key(entry),
            body: entry.body ?? {},
          }));
          const mkdir = restore.findIndex(
            (entry) => entry.key === 'POST /api/execute' && entry.body.command === 'mkdir -p /var/backups',
          );
          expect(mkdir, 'execute mkdir -p /var/backups').toBeGreaterThan(0);
          const archiveWrite = restore.slice(mkdir).find((entry) => entry.key === 'POST /api/write')!;
          expect(archiveWrite.body).toMatchObject({
            encoding: 'base64',
            path: expect.stringMatching(/^\/var\/backups\/.+\.sqsh$/),
          });
          const unsquash = restore
            .slice(mkdir)
            .find((entry) => String(entry.body.command ?? '').includes('unsquashfs'))!;
          expect(unsquash.body.command).toBe(
            `/usr/bin/unsquashfs -f -d '/workspace' '${archiveWrite.body.path}'`,
          );
          expectInOrder(
            restore.slice(mkdir).map((entry) => entry.key),
            ['POST /api/write', 'POST /api/execute', 'POST /api/execute', 'POST /api/session/delete'],
          );
        } finally {
          await child.destroy();
        }
      } finally {
        await box.destroy();
      }
    }, 240_000);

    it('a wrong token is a 401 that names the secret', async () => {
      const response = await fetch(`${worker.url}/v1/sandboxes`, {
        headers: { authorization: 'Bearer wrong' },
      });
      expect(response.status).toBe(401);
      expect(await response.text()).toContain('STATEBOX_TOKEN');
    });
  },
);

function expectInOrder(keys: string[], expected: string[]): void {
  let position = 0;
  for (const wanted of expected) {
    const found = keys.indexOf(wanted, position);
    expect(found, `${wanted} after position ${position} in ${JSON.stringify(keys)}`).toBeGreaterThanOrEqual(
      0,
    );
    position = found + 1;
  }
}

import { describe, expect } from 'vitest';
import { InvalidStateError, SandboxNotFoundError, UnsupportedCapabilityError } from '../errors.js';
import type { ExecRequest } from '../provider.js';
import { createStatebox } from '../statebox.js';
import { RUN_LABEL, type SuiteContext, unless } from './context.js';
import { expectError, randomSuffix, run, text } from './helpers.js';

export function describeLifecycle(suite: SuiteContext): void {
  const { capabilities } = suite;
  const noSuspend = unless(capabilities.suspend !== 'none', capabilities, 'suspend');
  const noFork = unless(capabilities.fork !== 'none', capabilities, 'fork');

  describe('lifecycle', () => {
    suite.test(
      'create returns a running sandbox with its info, an empty workdir and exec working there',
      async () => {
        const box = await suite.create();
        const info = box.info;
        expect(typeof info.id).toBe('string');
        expect(info.id.length).toBeGreaterThan(0);
        expect(info.provider).toBe(suite.provider().name);
        expect(info.status).toBe('running');
        expect(info.parentId).toBeUndefined();
        expect(Number.isNaN(Date.parse(info.createdAt)), `createdAt ${info.createdAt} is not a date`).toBe(
          false,
        );
        expect(info.workdir.startsWith('/'), `workdir ${info.workdir} is not absolute`).toBe(true);
        expect((await run(box, 'pwd')).trim()).toBe(info.workdir);
        expect(await run(box, 'ls -A')).toBe('');
      },
    );

    suite.test('create with labels and env: labels are in the info, env reaches every exec', async () => {
      const box = await suite.create({
        labels: { purpose: 'labels and env', team: 'a b/c' },
        env: { STATEBOX_FROM_CREATE: 'value with spaces', STATEBOX_SECOND: 'x=y' },
      });
      expect(box.labels).toEqual({ [RUN_LABEL]: suite.runId, purpose: 'labels and env', team: 'a b/c' });
      expect(await run(box, 'echo "$STATEBOX_FROM_CREATE|$STATEBOX_SECOND"')).toBe('value with spaces|x=y\n');
      const argv = await box.exec(['sh', '-c', 'echo "$STATEBOX_FROM_CREATE"']);
      expect(argv.stdout).toBe('value with spaces\n');
    });

    suite.test('get from a fresh provider instance returns the same sandbox', async () => {
      const box = await suite.create({ labels: { purpose: 'get' } });
      await box.writeFile('hello.txt', 'from the first instance');
      const other = createStatebox({ provider: await suite.freshProvider() });
      const found = await other.get(box.id);
      expect(found.id).toBe(box.id);
      expect(found.status).toBe('running');
      expect(found.labels).toEqual(box.labels);
      expect(found.info.createdAt).toBe(box.info.createdAt);
      expect(found.workdir).toBe(box.workdir);
      expect(await found.readFile('hello.txt', 'utf8')).toBe('from the first instance');
    });

    suite.test('list from a fresh provider instance filters by every given label, exactly', async () => {
      const value = `list-${randomSuffix()}`;
      const a1 = await suite.create({ labels: { listing: value, group: 'a' } });
      const a2 = await suite.create({ labels: { listing: value, group: 'a' } });
      const b1 = await suite.create({ labels: { listing: value, group: 'b' } });
      const other = createStatebox({ provider: await suite.freshProvider() });
      const ids = async (labels: Record<string, string>) =>
        (await other.list({ labels })).map((box) => box.id).sort();

      expect(await ids({ listing: value })).toEqual([a1.id, a2.id, b1.id].sort());
      expect(await ids({ listing: value, group: 'a' })).toEqual([a1.id, a2.id].sort());
      expect(await ids({ listing: value, group: 'b' })).toEqual([b1.id]);
      expect(await ids({ listing: value, group: 'c' })).toEqual([]);
      expect(await ids({ listing: `${value}-other` })).toEqual([]);
      const listed = (await other.list({ labels: { listing: value, group: 'b' } }))[0]!;
      expect(listed.labels).toEqual(b1.labels);
      expect(listed.status).toBe('running');
      const all = (await other.list()).map((box) => box.id);
      expect(all).toEqual(expect.arrayContaining([a1.id, a2.id, b1.id]));
    });

    suite.test('a destroyed sandbox is not listed, and destroy twice resolves', async () => {
      const value = `destroy-${randomSuffix()}`;
      const kept = await suite.create({ labels: { listing: value } });
      const destroyed = await suite.create({ labels: { listing: value } });
      await destroyed.destroy();
      await destroyed.destroy();
      // The handle remembers it destroyed; the provider itself must be idempotent too.
      await suite.provider().destroy(destroyed.id);
      const fresh = await suite.freshProvider();
      await fresh.destroy(destroyed.id);
      const listed = (await fresh.list({ labels: { listing: value } })).map((info) => info.id);
      expect(listed).toEqual([kept.id]);
    });

    suite.test('a destroyed sandbox is not found, and its handle refuses every operation', async () => {
      const box = await suite.create();
      await box.destroy();
      const error = await expectError(
        () => suite.provider().get(box.id),
        SandboxNotFoundError,
        'provider.get after destroy',
      );
      expect(error.sandboxId).toBe(box.id);
      expect(error.isRetryable).toBe(false);
      const fresh = createStatebox({ provider: await suite.freshProvider() });
      await expectError(() => fresh.get(box.id), SandboxNotFoundError, 'statebox.get after destroy');
      const operations: Record<string, () => Promise<unknown>> = {
        exec: () => box.exec('true'),
        readFile: () => box.readFile('a.txt'),
        writeFile: () => box.writeFile('a.txt', 'x'),
        suspend: () => box.suspend(),
        resume: () => box.resume(),
        fork: () => box.fork(),
        refresh: () => box.refresh(),
      };
      for (const [operation, call] of Object.entries(operations)) {
        const refused = await expectError(call, InvalidStateError, `${operation} on a destroyed handle`);
        expect(refused.status).toBe('destroyed');
      }
    });

    describe('an unknown id is SandboxNotFoundError, never a transient failure', () => {
      const unknownId = `sbx-does-not-exist-${randomSuffix()}`;
      const request: ExecRequest = { command: ['true'], cwd: '/workspace', maxOutputBytes: 1024 };
      const cases: [string, () => Promise<unknown>, string | undefined][] = [
        ['get', () => suite.provider().get(unknownId), undefined],
        ['exec', () => suite.provider().exec(unknownId, request), undefined],
        [
          'readFile',
          () => suite.provider().readFile(unknownId, '/workspace/a.txt', { maxBytes: 1024 }),
          undefined,
        ],
        ['writeFile', () => suite.provider().writeFile(unknownId, '/workspace/a.txt', text('x')), undefined],
        ['suspend', () => suite.provider().suspend(unknownId), noSuspend],
        ['resume', () => suite.provider().resume(unknownId), noSuspend],
        ['fork', () => suite.provider().fork(unknownId, {}), noFork],
        ['statebox.get', () => suite.statebox().get(unknownId), undefined],
      ];
      for (const [operation, call, unsupported] of cases) {
        suite.test(
          `${operation}(unknown id) throws SandboxNotFoundError`,
          async () => {
            const error = await expectError(call, SandboxNotFoundError, `${operation}(${unknownId})`);
            expect(error.sandboxId).toBe(unknownId);
            expect(error.isRetryable).toBe(false);
          },
          unsupported,
        );
      }
      suite.test('destroy(unknown id) resolves', async () => {
        await suite.provider().destroy(unknownId);
      });
    });

    describe('an undeclared capability throws UnsupportedCapabilityError', () => {
      suite.test(
        "suspend() when the provider declares suspend: 'none'",
        async () => {
          const box = await suite.create();
          const error = await expectError(() => box.suspend(), UnsupportedCapabilityError, 'suspend');
          expect(error.provider).toBe(suite.provider().name);
          expect((await box.refresh()).status).toBe('running');
        },
        capabilities.suspend === 'none' ? undefined : `provider declares suspend: '${capabilities.suspend}'`,
      );
      suite.test(
        "fork() when the provider declares fork: 'none'",
        async () => {
          const box = await suite.create();
          await expectError(() => box.fork(), UnsupportedCapabilityError, 'fork');
          expect(await run(box, 'echo still here')).toBe('still here\n');
        },
        capabilities.fork === 'none' ? undefined : `provider declares fork: '${capabilities.fork}'`,
      );
    });
  });
}

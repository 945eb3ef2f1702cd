import { describe, expect } from 'vitest';
import type { ForkRequest } from '../provider.js';
import type { Sandbox } from '../sandbox.js';
import { RUN_LABEL, type SuiteContext } from './context.js';
import { describeError, liveness, run, sha256Inside, startHeartbeat } from './helpers.js';
import { verifyTree, writeTree } from './suspend.js';

const SIXTEEN_MIB = 16 * 1024 * 1024;

export function describeFork(suite: SuiteContext): void {
  const { capabilities } = suite;
  const noFork = capabilities.fork === 'none' ? "provider declares fork: 'none'" : undefined;

  /** Forks through the user API, labelling the child with this run so the final sweep finds leftovers. */
  const fork = async (source: Sandbox, labels: Record<string, string> = {}): Promise<Sandbox> => {
    const request: ForkRequest = { labels: { [RUN_LABEL]: suite.runId, ...labels } };
    return suite.track(await source.fork(request));
  };

  const exists = async (box: Sandbox, path: string): Promise<boolean> =>
    (await box.exec(['test', '-e', path])).exitCode === 0;

  describe('fork', () => {
    suite.test(
      'the child starts from the source: files, modes, symlinks, parentId and only the requested labels',
      async () => {
        const source = await suite.create({ labels: { purpose: 'fork source', role: 'source' } });
        const tree = await writeTree(source, capabilities);
        const child = await fork(source, { role: 'child' });
        expect(child.id).not.toBe(source.id);
        expect(child.status).toBe('running');
        expect(child.info.parentId).toBe(source.id);
        expect(child.labels).toEqual({ [RUN_LABEL]: suite.runId, role: 'child' });
        expect(child.info.provider).toBe(suite.provider().name);
        await verifyTree(child, tree, capabilities);
        // The source keeps its files and is running again, whatever forkSource says about its processes.
        expect((await source.refresh()).status).toBe('running');
        await verifyTree(source, tree, capabilities);
        const fetched = await suite.provider().get(child.id);
        expect(fetched.parentId).toBe(source.id);
      },
      noFork,
    );

    suite.test(
      'parent and child are isolated both ways',
      async () => {
        const source = await suite.create({ labels: { purpose: 'fork isolation' } });
        await source.writeFile('shared.txt', 'original');
        await source.writeFile('doomed.txt', 'doomed');
        const child = await fork(source);
        await child.writeFile('child-only.txt', 'child');
        await child.writeFile('shared.txt', 'changed by child');
        await run(child, 'rm doomed.txt');
        await source.writeFile('parent-only.txt', 'parent');
        await run(source, 'echo appended by parent >> shared.txt');

        expect(await exists(source, 'child-only.txt'), 'child write visible in parent').toBe(false);
        expect(await exists(child, 'parent-only.txt'), 'parent write visible in child').toBe(false);
        expect(await source.readFile('shared.txt', 'utf8')).toBe('originalappended by parent\n');
        expect(await child.readFile('shared.txt', 'utf8')).toBe('changed by child');
        expect(await source.readFile('doomed.txt', 'utf8')).toBe('doomed');
        expect(await exists(child, 'doomed.txt')).toBe(false);
      },
      noFork,
    );

    suite.test(
      'an in-place append to a large file in the child leaves the source byte-identical',
      async () => {
        const source = await suite.create({ labels: { purpose: 'fork large append' } });
        await run(source, `head -c ${SIXTEEN_MIB} /dev/urandom > big.bin`);
        const original = await sha256Inside(source, 'big.bin');
        const child = await fork(source);
        await run(child, 'echo x >> big.bin');
        expect((await run(child, 'wc -c < big.bin')).trim()).toBe(String(SIXTEEN_MIB + 2));
        expect(await sha256Inside(child, 'big.bin')).not.toBe(original);
        expect((await run(source, 'wc -c < big.bin')).trim()).toBe(String(SIXTEEN_MIB));
        expect(await sha256Inside(source, 'big.bin')).toBe(original);
        // And the other way: a write in the parent does not reach the child.
        await run(source, 'echo y >> big.bin');
        expect((await run(child, 'wc -c < big.bin')).trim()).toBe(String(SIXTEEN_MIB + 2));
      },
      noFork,
    );

    suite.test(
      "the source's background process survives the fork (forkSource: 'kept')",
      async () => {
        const source = await suite.create({ labels: { purpose: 'fork source processes' } });
        await run(source, startHeartbeat('fork.pid', 'fork.beat'));
        const before = await liveness(source, 'fork.pid', 'fork.beat');
        expect(before, 'a background process started by exec did not outlive its exec').toEqual({
          process: 'alive',
          beating: true,
        });
        await fork(source);
        expect(await liveness(source, 'fork.pid', 'fork.beat')).toEqual({ process: 'alive', beating: true });
      },
      noFork ??
        (capabilities.forkSource === 'kept'
          ? undefined
          : `provider declares forkSource: '${capabilities.forkSource}'`),
    );

    suite.test(
      `the child's processes match the declaration${suite.skipReason ? '' : ` fork: '${capabilities.fork}'`}`,
      async () => {
        const source = await suite.create({ labels: { purpose: 'fork child processes' } });
        await run(source, startHeartbeat('fork.pid', 'fork.beat'));
        const before = await liveness(source, 'fork.pid', 'fork.beat');
        expect(before, 'a background process started by exec did not outlive its exec').toEqual({
          process: 'alive',
          beating: true,
        });
        const child = await fork(source);
        const inChild = await liveness(child, 'fork.pid', 'fork.beat');
        if (capabilities.fork === 'memory') {
          expect(inChild, "fork: 'memory' but the child has no copy of the running process").toEqual({
            process: 'alive',
            beating: true,
          });
        } else {
          expect(inChild, "fork: 'filesystem' but a process runs in the child").toEqual({
            process: 'gone',
            beating: false,
          });
        }
      },
      noFork,
    );

    suite.test(
      'forks a suspended sandbox without resuming it',
      async () => {
        const source = await suite.create({ labels: { purpose: 'fork suspended' } });
        await source.writeFile('state.txt', 'before suspend');
        await source.suspend();
        const child = await fork(source);
        expect(child.status).toBe('running');
        expect(child.info.parentId).toBe(source.id);
        expect(await run(child, 'cat state.txt')).toBe('before suspend');
        expect((await suite.provider().get(source.id)).status).toBe('suspended');
        await child.writeFile('state.txt', 'child');
        await source.resume();
        expect(await run(source, 'cat state.txt')).toBe('before suspend');
      },
      noFork ??
        (capabilities.suspend === 'none'
          ? "provider declares suspend: 'none'"
          : capabilities.forkSuspended
            ? undefined
            : 'provider declares forkSuspended: false'),
    );

    suite.test(
      'a fork of a fork sees both ancestors’ changes and is isolated from both',
      async () => {
        const source = await suite.create({ labels: { purpose: 'fork of fork' } });
        await source.writeFile('generation.txt', 'source\n');
        const child = await fork(source, { generation: '1' });
        await run(child, 'echo child >> generation.txt && echo child > child.txt');
        const grandchild = await fork(child, { generation: '2' });
        expect(grandchild.info.parentId).toBe(child.id);
        expect(await grandchild.readFile('generation.txt', 'utf8')).toBe('source\nchild\n');
        expect(await grandchild.readFile('child.txt', 'utf8')).toBe('child\n');
        await run(grandchild, 'echo grandchild >> generation.txt && echo g > grandchild.txt');
        expect(await child.readFile('generation.txt', 'utf8')).toBe('source\nchild\n');
        expect(await source.readFile('generation.txt', 'utf8')).toBe('source\n');
        expect(await exists(child, 'grandchild.txt')).toBe(false);
        expect(await exists(source, 'grandchild.txt')).toBe(false);
        expect(await exists(source, 'child.txt')).toBe(false);
        await run(child, 'echo late > late.txt');
        expect(await exists(grandchild, 'late.txt')).toBe(false);
      },
      noFork,
    );

    suite.test(
      'five concurrent forks of one source each see only their own marker',
      async () => {
        const source = await suite.create({ labels: { purpose: 'five forks' } });
        await source.writeFile('base.txt', 'base');
        const settled = await Promise.allSettled(
          [0, 1, 2, 3, 4].map((index) => fork(source, { branch: String(index) })),
        );
        const failures = settled.filter((result) => result.status === 'rejected');
        expect(
          failures.map((failure) => describeError(failure.reason)),
          'concurrent forks failed',
        ).toEqual([]);
        const children = settled.map((result) => (result as PromiseFulfilledResult<Sandbox>).value);
        expect(new Set(children.map((child) => child.id)).size).toBe(5);
        await Promise.all(
          children.map((child, index) => child.writeFile(`marker-${index}.txt`, String(index))),
        );
        for (const [index, child] of children.entries()) {
          expect(child.labels.branch).toBe(String(index));
          expect(await child.readFile('base.txt', 'utf8')).toBe('base');
          expect((await run(child, 'ls marker-*.txt')).trim()).toBe(`marker-${index}.txt`);
        }
        expect(await exists(source, 'marker-0.txt')).toBe(false);
      },
      noFork,
    );
  });
}

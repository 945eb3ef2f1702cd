/** Hardening: hard links keep their identity across suspend and fork. */
import { describe, expect } from 'vitest';
import type { Sandbox } from '../../sandbox.js';
import { unless } from '../context.js';
import { run } from '../helpers.js';
import type { HardeningContext } from './shared.js';

export function describeHardLinks(hardening: HardeningContext): void {
  const { suite, capabilities, noSuspend, noFork, fork } = hardening;
  describe('hardening: hard links', () => {
    const linkState = async (box: Sandbox) => {
      const [a, b] = (await run(box, 'stat -c "%i %h" links/a links/b')).trim().split('\n');
      return {
        sameInode: a!.split(' ')[0] === b!.split(' ')[0],
        links: [a!.split(' ')[1], b!.split(' ')[1]],
      };
    };
    const expectLinked = async (box: Sandbox, when: string) => {
      expect(await linkState(box), `links/a and links/b ${when}`).toEqual({
        sameInode: true,
        links: ['2', '2'],
      });
    };
    const makeLinks = async (box: Sandbox) => {
      await run(box, "mkdir -p links && printf 'one\\n' > links/a && ln links/a links/b");
      await expectLinked(box, 'right after ln');
    };

    suite.test(
      'two names of one file stay one file across suspend and resume',
      async () => {
        const box = await suite.create({ labels: { purpose: 'hard links suspend' } });
        await makeLinks(box);
        await box.suspend();
        await box.resume();
        await expectLinked(box, 'after suspend and resume');
        await run(box, 'echo two >> links/a');
        expect(await run(box, 'cat links/b')).toBe('one\ntwo\n');
      },
      unless(capabilities.hardLinks, capabilities, 'hardLinks') ?? noSuspend,
    );

    suite.test(
      'two names of one file stay one file after a fork, in the child and in the source, each isolated',
      async () => {
        const source = await suite.create({ labels: { purpose: 'hard links fork' } });
        await makeLinks(source);
        const child = await fork(source);
        await expectLinked(child, 'in the child');
        await expectLinked(source, 'in the source after the fork');
        await run(child, 'echo child >> links/b');
        await run(source, 'echo source >> links/a');
        expect(await run(child, 'cat links/a'), 'in the child, a write through b seen through a').toBe(
          'one\nchild\n',
        );
        expect(await run(child, 'cat links/b')).toBe('one\nchild\n');
        expect(await run(source, 'cat links/b'), 'in the source, a write through a seen through b').toBe(
          'one\nsource\n',
        );
        expect(await run(source, 'cat links/a')).toBe('one\nsource\n');
      },
      unless(capabilities.hardLinks, capabilities, 'hardLinks') ?? noFork,
    );

    suite.test(
      'each name of a hard-linked file keeps its content across suspend, resume and fork (any hardLinks)',
      async () => {
        const box = await suite.create({ labels: { purpose: 'hard link contents' } });
        await run(box, "mkdir -p links && printf 'one\\n' > links/a && ln links/a links/b");
        if (capabilities.suspend !== 'none') {
          await box.suspend();
          await box.resume();
          expect(await run(box, 'cat links/a links/b')).toBe('one\none\n');
        }
        if (capabilities.fork !== 'none') {
          const child = await fork(box);
          expect(await run(child, 'cat links/a links/b')).toBe('one\none\n');
          expect(await run(box, 'cat links/a links/b')).toBe('one\none\n');
        }
      },
      noSuspend && noFork ? `${noSuspend}, ${noFork}` : undefined,
    );
  });
}

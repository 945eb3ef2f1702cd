import { describe, expect } from 'vitest';
import { InvalidStateError, SandboxNotFoundError } from '../errors.js';
import type { SandboxProvider } from '../provider.js';
import { type SuiteContext, unless } from './context.js';
import { expectError, randomData, within } from './helpers.js';

/**
 * The optional operator methods (`terminal`, `usage`, `prune`): a provider that has one gets it tested;
 * one that leaves it out has the case skipped with that reason.
 */
export function describeOperator(suite: SuiteContext): void {
  const methods: Partial<SandboxProvider> = suite.skipReason ? {} : suite.provider();
  const without = (method: 'terminal' | 'usage' | 'prune') =>
    suite.skipReason || typeof methods[method] === 'function' ? undefined : `provider has no ${method}()`;
  const noSuspend = unless(suite.capabilities.suspend !== 'none', suite.capabilities, 'suspend');

  describe('operator methods', () => {
    suite.test(
      'terminal: a program on a terminal of the given size, typed input, its exit code',
      async () => {
        const box = await suite.create();
        const terminal = await suite.provider().terminal!(box.id, {
          command: ['/bin/sh', '-c', 'stty size; read line; echo "got:$line"; exit 3'],
          cwd: box.workdir,
          env: { TERM: 'xterm' },
          columns: 77,
          rows: 22,
        });
        let output = '';
        const decoder = new TextDecoder();
        terminal.onData((chunk) => {
          output += decoder.decode(chunk, { stream: true });
        });
        await within(
          (async () => {
            while (!output.includes('22 77')) await new Promise((resolve) => setTimeout(resolve, 25));
          })(),
          30_000,
          `the terminal's size (output so far: ${JSON.stringify(output)})`,
        );
        terminal.write('hello\r');
        expect(await within(terminal.exited, 30_000, 'the program to exit')).toBe(3);
        expect(output).toContain('got:hello');
      },
      without('terminal'),
    );

    suite.test(
      'terminal: a suspended sandbox is refused with InvalidStateError',
      async () => {
        const box = await suite.create();
        await box.suspend();
        await expectError(
          () => suite.provider().terminal!(box.id, { cwd: box.workdir, columns: 80, rows: 24 }),
          InvalidStateError,
          'terminal on a suspended sandbox',
        );
      },
      without('terminal') ?? noSuspend,
    );

    suite.test(
      'usage: counts what the sandbox wrote; an unknown id is not found',
      async () => {
        const box = await suite.create();
        const before = await suite.provider().usage!(box.id);
        expect(before.ownBytes).toBeGreaterThanOrEqual(0);
        expect(before.sharedBytes).toBeGreaterThanOrEqual(0);
        await box.writeFile('blob', randomData(2 * 1024 * 1024));
        const after = await suite.provider().usage!(box.id);
        expect(after.ownBytes - before.ownBytes).toBeGreaterThanOrEqual(2 * 1024 * 1024);
        await expectError(
          async () => {
            const gone = await suite.create();
            await gone.destroy();
            return suite.provider().usage!(gone.id);
          },
          SandboxNotFoundError,
          'usage of a destroyed sandbox',
        );
      },
      without('usage'),
    );

    // A real prune would act on a state directory other suites share; a dry run is checked instead.
    suite.test(
      'prune (dry run): a report that names nothing a live sandbox uses, and removes nothing',
      async () => {
        const box = await suite.create();
        await box.writeFile('kept.txt', 'kept');
        const report = await suite.provider().prune!({ dryRun: true });
        expect(report.dryRun).toBe(true);
        expect(report.freedBytes).toBe(report.items.reduce((sum, item) => sum + item.bytes, 0));
        for (const item of report.items) {
          expect(item.removed).toBe(false);
          expect(item.name).not.toContain(box.id);
          expect(typeof item.reason).toBe('string');
        }
        expect(await box.readFile('kept.txt', 'utf8')).toBe('kept');
      },
      without('prune'),
    );
  });
}

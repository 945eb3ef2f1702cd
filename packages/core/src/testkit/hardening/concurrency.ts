/** Hardening: concurrent calls on one sandbox all succeed or fail with a typed error. */
import { describe, expect } from 'vitest';
import { describeError, run, sha256, sha256Inside, text, within } from '../helpers.js';
import type { HardeningContext } from './shared.js';

export function describeConcurrency(hardening: HardeningContext): void {
  const { suite } = hardening;
  describe('hardening: concurrency', () => {
    const sandbox = suite.shared();

    suite.test(
      '20 concurrent exec, readFile and writeFile calls on one sandbox all succeed, correctly',
      async () => {
        const box = sandbox();
        const count = 20;
        const payload = (index: number) => text(`payload ${index} ${'x'.repeat(index * 997)}\n`);
        await run(box, 'mkdir -p concurrent');
        for (let index = 0; index < count; index++) {
          if (index % 3 === 2) await box.writeFile(`concurrent/read-${index}.txt`, payload(index));
        }
        const settled = await within(
          Promise.allSettled(
            Array.from({ length: count }, async (_, index) => {
              if (index % 3 === 0) {
                const result = await box.exec([
                  'sh',
                  '-c',
                  `echo exec-$1; ls concurrent > /dev/null`,
                  'sh',
                  `${index}`,
                ]);
                expect(result.exitCode).toBe(0);
                expect(result.stdout).toBe(`exec-${index}\n`);
              } else if (index % 3 === 1) {
                await box.writeFile(`concurrent/written-${index}.txt`, payload(index));
              } else {
                expect(sha256(await box.readFile(`concurrent/read-${index}.txt`))).toBe(
                  sha256(payload(index)),
                );
              }
            }),
          ),
          60_000,
          `${count} concurrent calls`,
        );
        const failures = settled.flatMap((result, index) =>
          result.status === 'rejected' ? [`call ${index}: ${describeError(result.reason)}`] : [],
        );
        expect(failures, 'concurrent calls failed').toEqual([]);
        for (let index = 1; index < count; index += 3) {
          expect(await sha256Inside(box, `concurrent/written-${index}.txt`), `written-${index}.txt`).toBe(
            sha256(payload(index)),
          );
        }
      },
    );
  });
}

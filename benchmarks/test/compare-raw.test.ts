import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { local } from '@statebox/local';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDriver } from '../src/compare/drivers.ts';
import { type LifecycleResult, runLifecycle } from '../src/compare/lifecycle.ts';
import { type RawLane, type RawResult, type RawSdk, rawResult } from '../src/compare/raw.ts';
import { rawCells } from '../src/compare/text.ts';
import type { Driver } from '../src/compare/types.ts';
import { rawOperations } from '../src/raw-sdk/types.ts';
import { time } from '../src/stats.ts';
import { planWorkspace, workspaceSizes } from '../src/workspace.ts';

/**
 * The adapter-vs-raw-SDK measurement that the cloud backends' hook modules feed, run inside the
 * lifecycle rounds. Here the raw side is the local provider's own `statebox-v1` methods, called
 * directly on a provider of its own (no `Sandbox` handle, no input validation, no retry), so the
 * overhead is core's over the provider: a real second side, not a stand-in. It asserts the shape and
 * the arithmetic of the result, not durations.
 */
describe.skipIf(process.platform !== 'linux')(
  'compare: adapter vs raw SDK in the lifecycle rounds (local provider SPI as the raw side)',
  () => {
    let home: string;
    let driver: Driver;
    let lane: LifecycleResult;
    let result: RawResult;
    const execPerRound = 4;

    beforeAll(async () => {
      home = await mkdtemp(join(tmpdir(), 'statebox-compare-raw-'));
      driver = await openDriver({
        kind: 'statebox',
        name: 'local',
        source: 'real',
        runId: 'rawtest',
        config: { provider: 'local', home: join(home, 'adapter') },
      });
      const provider = local({ home: join(home, 'raw') });
      const run = async (id: string, command: string) => {
        const output = await provider.exec(id, { command, cwd: '/workspace', maxOutputBytes: 1 << 20 });
        if (output.exitCode !== 0) throw new Error(`${command} exited ${output.exitCode}: ${output.stderr}`);
      };
      const made = new Set<string>();
      const create = async () => {
        const { id } = await provider.create({});
        made.add(id);
        return id;
      };
      const raw: RawSdk = {
        sdk: '@statebox/local provider methods',
        timedAt: 'in this process, around the provider call',
        missing: {},
        open: async () => ({ id: await create(), shared: false }),
        close: async () => {
          for (const id of made) await provider.destroy(id).catch(() => undefined);
        },
        run,
        upload: (id, path, data) => provider.writeFile(id, path, data),
        measure: {
          async create() {
            let id = '';
            const ms = await time(async () => {
              id = (await provider.create({})).id;
            });
            await provider.destroy(id);
            return ms;
          },
          exec: (id) => time(() => run(id, 'true')),
          write_1mib: (id, path, data) => time(() => provider.writeFile(id, path, data)),
          read_1mib: (id, path) => time(() => provider.readFile(id, path, { maxBytes: 1 << 24 })),
          suspend: (id) => time(() => provider.suspend(id)),
          resume: (id) => time(() => provider.resume(id)),
          async fork(id) {
            let child = '';
            const ms = await time(async () => {
              child = (await provider.fork(id)).id;
            });
            made.add(child);
            return { ms, child };
          },
          async destroy(child) {
            const ms = await time(() => provider.destroy(child!));
            made.delete(child!);
            return ms;
          },
        },
      };
      const measured = await runLifecycle([driver], {
        plan: planWorkspace(workspaceSizes.small!),
        rounds: 2,
        execPerRound,
        raws: new Map([['local', raw]]),
        progress: () => undefined,
      });
      lane = measured.lanes[0]!;
      result = measured.raw[0]!;
    }, 240_000);

    afterAll(async () => {
      await driver?.close();
      await rm(home, { recursive: true, force: true });
    });

    it('measures every operation on both sides in the same rounds', () => {
      expect(lane.error).toBeNull();
      expect(result.error).toBeNull();
      expect(result.sdk).toBe('@statebox/local provider methods');
      expect(result.sandbox).toBe('own');
      expect(result.rows.map((row) => row.operation)).toEqual(rawOperations.map(([id]) => id));
      for (const row of result.rows) {
        const expected = row.operation === 'exec' ? 2 * execPerRound : 2;
        expect(row.noRawEquivalent, row.operation).toBeNull();
        expect(row.adapterSamples.length, row.operation).toBe(expected);
        expect(row.rawSamples.length, row.operation).toBe(expected);
        expect(row.rawMs!, row.operation).toBeGreaterThan(0);
        expect(row.overheadMs!, row.operation).toBeCloseTo(row.adapterMs! - row.rawMs!, 2);
        expect(row.overheadPct!, row.operation).toBeCloseTo((row.overheadMs! / row.rawMs!) * 100, 0);
      }
    });

    it("takes the adapter's medians from the lifecycle figures of the same run", () => {
      const figure = (id: keyof LifecycleResult['figures']) => {
        const found = lane.figures[id];
        return found && 'value' in found ? found.value : undefined;
      };
      const byOperation = Object.fromEntries(result.rows.map((row) => [row.operation, row.adapterMs]));
      expect(byOperation.create).toBe(figure('create'));
      expect(byOperation.exec).toBe(figure('exec_p50'));
      expect(byOperation.write_1mib).toBe(figure('write_1mib'));
      expect(byOperation.suspend).toBe(figure('suspend'));
      expect(byOperation.fork).toBe(figure('fork'));
      expect(byOperation.destroy).toBe(figure('destroy'));
    });

    it('reports an operation the SDK lacks as "no raw equivalent", with its reason', () => {
      const samples = new Map([['destroy', [3, 5]]]);
      const without: RawLane = {
        sdk: { ...rawSdkStub(), missing: { destroy: 'the SDK deletes forks only with their source' } },
        id: 'x',
        shared: false,
        samples: new Map(),
        error: null,
      };
      const row = rawResult('some-cloud', without, samples, null).rows.find(
        (item) => item.operation === 'destroy',
      )!;
      expect(row).toMatchObject({
        adapterMs: 4,
        rawMs: null,
        overheadMs: null,
        noRawEquivalent: 'the SDK deletes forks only with their source',
      });
      expect(rawCells(row)).toEqual({
        adapter: '4.00 ms',
        raw: 'no raw equivalent',
        overheadMs: '-',
        overheadPct: '-',
      });
    });
  },
);

/** A raw side with no operations at all, for the report's formatting of missing ones. */
function rawSdkStub(): RawSdk {
  return {
    sdk: 'none',
    timedAt: 'nowhere',
    missing: {},
    open: async () => ({ id: 'x', shared: false }),
    close: async () => undefined,
    measure: {},
  };
}

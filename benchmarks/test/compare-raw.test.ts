import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { local } from '@statebox/local';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDriver } from '../src/compare/drivers.ts';
import { measureRaw, type RawResult, type RawSdk } from '../src/compare/raw.ts';
import type { Driver } from '../src/compare/types.ts';

/**
 * The adapter-vs-raw-SDK measurement that the cloud backends' hook modules feed. Here the raw side is
 * the local provider's own `statebox-v1` methods, called directly (no `Sandbox` handle, no input
 * validation, no retry), so the ratio is core's overhead over the provider: a real second side, not
 * a stand-in. It asserts the shape of the result, not durations.
 */
describe.skipIf(process.platform !== 'linux')(
  'compare: adapter vs raw SDK (local provider SPI as the raw side)',
  () => {
    let home: string;
    let driver: Driver;
    let result: RawResult;

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
      const exec = async (id: string, command: string) => {
        const output = await provider.exec(id, { command, cwd: '/workspace', maxOutputBytes: 1 << 20 });
        if (output.exitCode !== 0) throw new Error(`${command} exited ${output.exitCode}`);
      };
      const raw: RawSdk = {
        sdk: '@statebox/local provider methods',
        create: async () => (await provider.create({})).id,
        destroy: (id) => provider.destroy(id),
        exec,
        writeFile: (id, path, data) => provider.writeFile(id, path, data),
        readFile: (id, path) => provider.readFile(id, path, { maxBytes: 1 << 24 }),
        suspend: async (id) => {
          await provider.suspend(id);
        },
        resume: async (id) => {
          await provider.resume(id);
        },
        fork: async (id) => (await provider.fork(id)).id,
      };
      result = await measureRaw(driver, raw, 2);
    }, 180_000);

    afterAll(async () => {
      await driver?.close();
      await rm(home, { recursive: true, force: true });
    });

    it('compares every operation the raw side offers, with finite ratios', () => {
      expect(result.error).toBeNull();
      expect(result.sdk).toBe('@statebox/local provider methods');
      expect(result.rows.map((row) => row.operation)).toEqual([
        'create',
        'exec `true`',
        'writeFile 1 MiB',
        'readFile 1 MiB',
        'suspend',
        'resume',
        'fork',
      ]);
      for (const row of result.rows) {
        expect(row.adapterMs, row.operation).toBeGreaterThan(0);
        expect(row.rawMs, row.operation).toBeGreaterThan(0);
        expect(row.ratio, row.operation).toBeCloseTo(row.adapterMs / row.rawMs, 2);
        expect(row.samples, row.operation).toBe(row.operation === 'exec `true`' ? 20 : 2);
      }
    });
  },
);

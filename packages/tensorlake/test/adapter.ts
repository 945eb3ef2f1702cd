import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import {
  ConfigError,
  createStatebox,
  FileNotFoundError,
  InvalidStateError,
  SandboxNotFoundError,
  TransientError,
} from '@statebox/core';
import type { ConformanceContext } from '@statebox/core/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeName, encodeName, tensorlake } from '../src/index.js';
import { assertLoopbackUrl, type EmulatedTensorlake, startEmulatedTensorlake } from '../src/testing.js';

const RUN_LABEL = 'statebox-conformance';
const dist = fileURLToPath(new URL('../dist/index.js', import.meta.url));

/** Lists by label from another Node process, through `createFromConfig` and the environment alone. */
async function listFromAnotherProcess(env: Record<string, string>, labels: Record<string, string>) {
  const script = `
    const { createFromConfig } = await import(${JSON.stringify(dist)});
    const provider = createFromConfig({}, process.env);
    const found = await provider.list({ labels: JSON.parse(process.argv[1]) });
    const again = await Promise.all(found.map((info) => provider.get(info.id)));
    process.stdout.write(JSON.stringify(again));`;
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['--input-type=module', '-e', script, JSON.stringify(labels)],
    { env: { ...process.env, ...env, STATEBOX_PROVIDER: 'tensorlake' }, timeout: 60_000 },
  );
  return JSON.parse(stdout) as Array<{ id: string; labels: Record<string, string>; status: string }>;
}

export function describeAdapterTests(context: ConformanceContext, emulated: EmulatedTensorlake): void {
  describe('labels live in the sandbox name', () => {
    it('encodes any labels and a parent into [a-z0-9-] and decodes them back', () => {
      const labels = { session: 'sesn_01ABC', 'team/owner': 'Zoë Ünïcode', empty: '', dash: 'a-b--c' };
      const name = encodeName(labels, 'parent-1');
      expect(name).toMatch(/^sb-[a-z0-9]{10}(-[a-z0-9]+|-[0-9a-f]{2})*[a-z0-9-]*$/);
      expect(name).toMatch(/^[a-z0-9-]+$/);
      expect(decodeName(name)).toEqual({ labels, parentId: 'parent-1' });
      expect(decodeName('my-own-sandbox')).toBeUndefined();
    });

    it('refuses labels too long for a name with a ConfigError that says so', async () => {
      const error = await context
        .statebox()
        .create({ labels: { [RUN_LABEL]: 'x', long: 'y'.repeat(300) } })
        .catch((caught: unknown) => caught);
      expect(ConfigError.isInstance(error), String(error)).toBe(true);
      expect((error as Error).message).toMatch(/limit is 253/);
    });

    it('list({ labels }) and get(id) from another process, with no state of its own', async () => {
      const labels = { [RUN_LABEL]: 'cross-process', session: `sesn_${Date.now()}` };
      const box = context.track(await context.statebox().create({ labels }));
      const other = context.track(
        await context.statebox().create({ labels: { [RUN_LABEL]: 'cross-process' } }),
      );
      const found = await listFromAnotherProcess(emulated.env, { session: labels.session });
      expect(found.map((info) => info.id)).toEqual([box.id]);
      expect(found[0]!.labels).toEqual(labels);
      expect(found.map((info) => info.id)).not.toContain(other.id);
    });
  });

  describe('transitional statuses and polling', () => {
    let slow: EmulatedTensorlake;
    beforeAll(async () => {
      // Each transition lasts 400 ms here, so several polls see `pending` or `suspending`.
      slow = await startEmulatedTensorlake({ transitionMs: 400 });
    });
    afterAll(() => slow?.close());

    it('waits out pending and suspending, polling at pollIntervalMs, never failing on them', async () => {
      const provider = tensorlake({ ...slow.options, pollIntervalMs: 25 });
      const statebox = createStatebox({ provider });
      const box = await statebox.create();
      try {
        const polls = () =>
          slow.emulator.server.requests.entries.filter(
            (record) => record.method === 'GET' && record.path.endsWith(`/sandboxes/${box.id}`),
          ).length;
        const beforeSuspend = polls();
        const suspending = box.suspend();
        // Another process asking in the middle of the transition gets the settled answer.
        const seen = await createStatebox({ provider: tensorlake(slow.options) }).get(box.id);
        expect((await suspending).status).toBe('suspended');
        expect(['running', 'suspended']).toContain(seen.status);
        // 400 ms of `suspending` at a 25 ms interval: far more than the SDK's one poll a second would make.
        expect(polls() - beforeSuspend).toBeGreaterThanOrEqual(5);
        expect((await box.resume()).status).toBe('running');
        expect((await box.exec('echo back')).stdout).toBe('back\n');
      } finally {
        await box.destroy();
      }
    });
  });

  describe('errors', () => {
    it('a refused connection is TransientError, never SandboxNotFoundError', async () => {
      const provider = tensorlake({ apiUrl: 'http://127.0.0.1:9', apiKey: 'tl_test', pollIntervalMs: 20 });
      for (const call of [
        () => provider.get('sandbox-1'),
        () => provider.list(),
        () => provider.destroy('sandbox-1'),
      ]) {
        const error = await call().then(
          () => undefined,
          (caught: unknown) => caught,
        );
        expect(TransientError.isInstance(error), String(error)).toBe(true);
        expect(SandboxNotFoundError.isInstance(error)).toBe(false);
      }
    });

    it('a wrong API key is a ConfigError naming TENSORLAKE_API_KEY', async () => {
      const provider = tensorlake({ ...emulated.options, apiKey: 'tl_wrong' });
      const error = await provider.list().catch((caught: unknown) => caught);
      expect(ConfigError.isInstance(error), String(error)).toBe(true);
      expect((error as Error).message).toContain('TENSORLAKE_API_KEY');
    });

    it('a 503 from the service is TransientError after the SDK retried it', async () => {
      const fault = emulated.emulator.server.faults.add({
        method: 'GET',
        path: /\/sandboxes$/,
        status: 503,
        times: 6,
      });
      try {
        const error = await tensorlake(emulated.options)
          .list()
          .catch((caught: unknown) => caught);
        expect(TransientError.isInstance(error), String(error)).toBe(true);
      } finally {
        fault.cancel();
      }
    });

    it('a missing file is FileNotFoundError and a suspended sandbox refuses exec with InvalidStateError', async () => {
      const box = context.track(await context.statebox().create({ labels: { [RUN_LABEL]: 'errors' } }));
      await expect(box.readFile('nowhere.txt')).rejects.toSatisfy(FileNotFoundError.isInstance);
      await box.suspend();
      await expect(box.exec('true')).rejects.toSatisfy(InvalidStateError.isInstance);
    });

    it('refuses a URL the SDK would silently send to production, and a missing key', () => {
      expect(() => tensorlake({ apiUrl: 'http://0.0.0.0:8900', apiKey: 'k' })).toThrow(
        /sandbox\.tensorlake\.ai/,
      );
      expect(() => tensorlake({ apiUrl: 'http://emulator:8080', apiKey: 'k' })).toThrow(ConfigError);
      const saved = process.env.TENSORLAKE_API_KEY;
      delete process.env.TENSORLAKE_API_KEY;
      try {
        expect(() => tensorlake({ apiUrl: emulated.url })).toThrow(/TENSORLAKE_API_KEY/);
      } finally {
        if (saved !== undefined) process.env.TENSORLAKE_API_KEY = saved;
      }
      expect(() => assertLoopbackUrl('https://api.tensorlake.ai')).toThrow(/refusing/);
      expect(assertLoopbackUrl(emulated.url)).toBe(emulated.url);
    });

    it('a failed fork or suspend leaves the source as it was, and makes no sandbox', async () => {
      const box = context.track(await context.statebox().create({ labels: { [RUN_LABEL]: 'failures' } }));
      await box.writeFile('kept.txt', 'source');
      const before = (await tensorlake(emulated.options).list()).length;
      const copyFault = emulated.emulator.server.faults.add({ method: 'POST', path: /\/copy$/, status: 500 });
      const suspendFault = emulated.emulator.server.faults.add({
        method: 'POST',
        path: /\/suspend$/,
        status: 409,
      });
      try {
        const forkError = await box.fork().catch((caught: unknown) => caught);
        expect(TransientError.isInstance(forkError), String(forkError)).toBe(true);
        const suspendError = await box.suspend().catch((caught: unknown) => caught);
        expect(suspendError).toBeInstanceOf(Error);
      } finally {
        copyFault.cancel();
        suspendFault.cancel();
      }
      expect((await box.refresh()).status).toBe('running');
      expect(await box.readFile('kept.txt', 'utf8')).toBe('source');
      expect((await tensorlake(emulated.options).list()).length).toBe(before);
    });

    it('the emulator saw no request it does not know', () => {
      expect(emulated.emulator.server.unhandled).toEqual([]);
    });
  });
}

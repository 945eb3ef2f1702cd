import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { ConfigError, createStatebox, ProviderError, TransientError } from '@statebox/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CloudflareProvider } from '../src/index.js';
import { type LocalWorker, localWorkerSkipReason, startLocalWorker } from '../src/testing.js';

const execFileAsync = promisify(execFile);
const MIB = 1024 * 1024;
const skip = await localWorkerSkipReason();

/** The workerd-managed container whose /workspace holds `marker` (found by asking each one). */
async function containerHolding(marker: string): Promise<string> {
  const { stdout } = await execFileAsync('docker', [
    'ps',
    '--format',
    '{{.Names}}',
    '--filter',
    'name=statebox-local-',
  ]);
  for (const name of stdout.split('\n').filter((line) => line && !line.endsWith('-proxy'))) {
    const found = await execFileAsync('docker', ['exec', name, 'test', '-e', `/workspace/${marker}`]).then(
      () => true,
      () => false,
    );
    if (found) return name;
  }
  throw new Error(`no container holds /workspace/${marker}`);
}

describe.skipIf(skip)(`cloudflare adapter${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let worker: LocalWorker;
  let provider: CloudflareProvider;
  beforeAll(async () => {
    worker = await startLocalWorker({ vars: { STATEBOX_MAX_BACKUP_BYTES: `${MIB}` } });
    provider = new CloudflareProvider({
      url: worker.url,
      token: worker.token,
      requestTimeoutMs: 60_000,
      lifecycleTimeoutMs: 300_000,
    });
  }, 240_000);
  afterAll(() => worker?.stop(), 120_000);

  it('a wrong token is a ConfigError naming the variable and the secret', async () => {
    const wrong = new CloudflareProvider({
      url: worker.url,
      token: 'wrong',
      requestTimeoutMs: 10_000,
      lifecycleTimeoutMs: 10_000,
    });
    const error = await wrong.list().catch((caught: unknown) => caught);
    expect(ConfigError.isInstance(error), String(error)).toBe(true);
    expect((error as Error).message).toContain('STATEBOX_CLOUDFLARE_TOKEN');
    expect((error as Error).message).toContain('STATEBOX_TOKEN');
  });

  it('a Worker URL that does not answer is a TransientError naming it', async () => {
    const nowhere = new CloudflareProvider({
      url: 'http://127.0.0.1:9',
      token: 'x',
      requestTimeoutMs: 10_000,
      lifecycleTimeoutMs: 10_000,
    });
    const error = await nowhere.get('sbxnothing').catch((caught: unknown) => caught);
    expect(TransientError.isInstance(error), String(error)).toBe(true);
    expect((error as Error).message).toContain('http://127.0.0.1:9');
  });

  it('a suspend over the backup size limit is refused and leaves the sandbox running with its files', async () => {
    const box = await createStatebox({ provider }).create({ labels: { purpose: 'backup limit' } });
    try {
      await box.exec('head -c 2097152 /dev/urandom > big.bin');
      const error = await box.suspend().catch((caught: unknown) => caught);
      expect(ProviderError.isInstance(error), String(error)).toBe(true);
      expect((error as Error).message).toContain('STATEBOX_MAX_BACKUP_BYTES');
      expect((await provider.get(box.id)).status).toBe('running');
      expect((await box.exec('wc -c < big.bin')).stdout.trim()).toBe('2097152');
    } finally {
      await box.destroy();
    }
  }, 240_000);

  it('a fork racing a suspend of its source waits for it and starts from the state it saved', async () => {
    // What a runner's idle sweep and a new session forking the same sandbox do at once.
    for (const delayMs of [0, 250]) {
      const box = await createStatebox({ provider }).create({ labels: { purpose: 'fork vs suspend' } });
      const children: string[] = [];
      try {
        await box.writeFile('state.txt', `saved ${delayMs}\n`);
        const suspending = box.suspend();
        await new Promise((resolve) => setTimeout(resolve, delayMs));
        const [, child] = await Promise.all([
          suspending,
          box.fork({ labels: { purpose: 'fork vs suspend' } }),
        ]);
        children.push(child.id);
        expect((await child.exec('cat state.txt')).stdout).toBe(`saved ${delayMs}\n`);
        expect((await provider.get(box.id)).status).toBe('suspended');
      } finally {
        for (const id of children) await provider.destroy(id).catch(() => undefined);
        await box.destroy();
      }
    }
  }, 300_000);

  it('an exec racing a suspend runs or is refused, and leaves no container restored for the suspended sandbox', async () => {
    const box = await createStatebox({ provider }).create({ labels: { purpose: 'exec vs suspend' } });
    try {
      const marker = `raced-${Date.now()}`;
      await box.writeFile(marker, 'x\n');
      const outcomes = await Promise.allSettled([
        box.suspend(),
        ...[0, 100, 400, 900].map((ms) =>
          new Promise((resolve) => setTimeout(resolve, ms)).then(() => box.exec(`cat ${marker}`)),
        ),
      ]);
      expect(outcomes[0]!.status, String((outcomes[0] as PromiseRejectedResult).reason)).toBe('fulfilled');
      for (const outcome of outcomes.slice(1)) {
        if (outcome.status === 'fulfilled') expect((outcome.value as { stdout: string }).stdout).toBe('x\n');
        else expect(String(outcome.reason)).toMatch(/suspended|InvalidState/);
      }
      expect((await provider.get(box.id)).status).toBe('suspended');
      await expect(containerHolding(marker)).rejects.toThrow(/no container holds/);
      await box.resume();
      expect((await box.exec(`cat ${marker}`)).stdout).toBe('x\n');
    } finally {
      await box.destroy();
    }
  }, 240_000);

  it('a container Cloudflare restarted on its own gets the latest backup back before the next call', async () => {
    const box = await createStatebox({ provider }).create({ labels: { purpose: 'restart' } });
    try {
      await box.writeFile('before.txt', 'backed up\n');
      await box.suspend();
      await box.resume();
      const marker = `marker-${Date.now()}`;
      await box.writeFile(marker, 'written after the backup\n');
      // Behind the Worker's back, as an eviction or a deploy would.
      await execFileAsync('docker', ['rm', '-f', await containerHolding(marker)]);
      const after = await box.exec(`cat before.txt; test -e ${marker} && echo present || echo lost`);
      expect(after.stdout).toBe('backed up\nlost\n');
      expect((await provider.get(box.id)).status).toBe('running');
    } finally {
      await box.destroy();
    }
  }, 240_000);
});

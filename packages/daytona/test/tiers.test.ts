import {
  ConfigError,
  createStatebox,
  InvalidStateError,
  SandboxNotFoundError,
  TransientError,
  UnsupportedCapabilityError,
} from '@statebox/core';
import { afterAll, describe, expect, it } from 'vitest';
import { daytona } from '../src/index.js';
import { emulatorSkipReason, startDaytonaForTests } from '../src/testing.js';

const skip = emulatorSkipReason();
const required = (process.env.STATEBOX_REQUIRE ?? '').split(',').includes('daytona');
const run = skip && !required ? describe.skip : describe;

/** The emulator's Daytona state of a sandbox, read through the real SDK. */
async function daytonaState(provider: ReturnType<typeof daytona>, id: string): Promise<string | undefined> {
  return (await provider.client.get(id)).state;
}

async function waitFor(check: () => Promise<boolean>, what: string, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

run(`daytona tiers and Daytona's own idle timers${skip ? ` (skipped: ${skip})` : ''}`, async () => {
  // A "minute" of 300 ms, so auto-stop (1 min) and auto-archive (2 min) happen within the test.
  const daytonaTest = skip
    ? undefined
    : await startDaytonaForTests({ emulator: { timing: { minuteMs: 300 } } });
  afterAll(() => daytonaTest?.close());
  const providerFor = (options: Parameters<NonNullable<typeof daytonaTest>['newProvider']>[0]) =>
    daytonaTest!.newProvider(options);

  for (const tier of ['stop', 'pause', 'archive'] as const) {
    it(`suspend with tier '${tier}' puts the sandbox in Daytona's ${tier} state and resume starts it again`, async () => {
      const provider = providerFor({ tier, autoStopAfter: 0 });
      const statebox = createStatebox({ provider });
      const box = await statebox.create({ labels: { test: `tier-${tier}` } });
      try {
        await box.writeFile('kept.txt', `kept by ${tier}`);
        await box.exec('sleep 600 > /dev/null 2>&1 & echo $! > probe.pid');
        await box.suspend();
        expect(await daytonaState(provider, box.id)).toBe(
          { stop: 'stopped', pause: 'paused', archive: 'archived' }[tier],
        );
        expect((await box.refresh()).status).toBe('suspended');
        await expect(box.exec('true')).rejects.toSatisfy(InvalidStateError.isInstance);
        // Another instance with another tier still resumes it: resume starts from any tier.
        const other = createStatebox({ provider: providerFor({ tier: 'stop' }) });
        const again = await other.get(box.id);
        await again.resume();
        expect(await daytonaState(provider, box.id)).toBe('started');
        expect(await again.readFile('kept.txt', 'utf8')).toBe(`kept by ${tier}`);
        const probe = await again.exec('kill -0 "$(cat probe.pid)" 2>/dev/null && echo alive || echo gone');
        expect(probe.stdout, `the background process after tier ${tier}`).toBe(
          tier === 'pause' ? 'alive\n' : 'gone\n',
        );
      } finally {
        await box.destroy();
      }
    });
  }

  it('a sandbox Daytona stopped by itself (auto-stop) reads as suspended and resumes through statebox; archiveAfter archives it', async () => {
    const provider = providerFor({ autoStopAfter: 1, archiveAfter: 2 });
    const statebox = createStatebox({ provider });
    const box = await statebox.create({ labels: { test: 'auto-stop' } });
    try {
      await box.writeFile('before.txt', 'before auto-stop');
      // Stopped, or already on to the archive when this machine is slow to look.
      await waitFor(
        async () =>
          ['stopped', 'archiving', 'archived'].includes((await daytonaState(provider, box.id)) ?? ''),
        'auto-stop',
      );
      expect((await statebox.get(box.id)).status).toBe('suspended');
      await waitFor(async () => (await daytonaState(provider, box.id)) === 'archived', 'auto-archive');
      // Keep it up now: a 300 ms "minute" would stop it again while the test reads.
      await (await provider.client.get(box.id)).setAutostopInterval(0);
      await box.resume();
      expect(await box.readFile('before.txt', 'utf8')).toBe('before auto-stop');
    } finally {
      await box.destroy();
    }
  });

  it('two processes suspending and resuming one sandbox at once both succeed, and nothing is lost', async () => {
    const first = createStatebox({ provider: providerFor({ tier: 'stop', autoStopAfter: 0 }) });
    const second = createStatebox({ provider: providerFor({ tier: 'stop', autoStopAfter: 0 }) });
    const box = await first.create();
    try {
      await box.writeFile('shared.txt', 'both');
      const other = await second.get(box.id);
      const suspended = await Promise.all([box.suspend(), other.suspend()]);
      expect(suspended.map((info) => info.status)).toEqual(['suspended', 'suspended']);
      const resumed = await Promise.all([box.resume(), other.resume()]);
      expect(resumed.map((info) => info.status)).toEqual(['running', 'running']);
      expect(await other.readFile('shared.txt', 'utf8')).toBe('both');
    } finally {
      await box.destroy();
    }
  });

  it('the pause tier on a container-class sandbox is UnsupportedCapabilityError and leaves it running', async () => {
    const container = await startDaytonaForTests({ tier: 'pause', emulator: { sandboxClass: 'container' } });
    try {
      const statebox = createStatebox({ provider: container.provider });
      const box = await statebox.create();
      const error = await box.suspend().catch((caught: unknown) => caught);
      expect(UnsupportedCapabilityError.isInstance(error), String(error)).toBe(true);
      expect((error as Error).message).toMatch(/container.*tier 'stop'/);
      expect((await box.exec('echo still')).stdout).toBe('still\n');
      await box.destroy();
    } finally {
      await container.close();
    }
  });

  it('a fork of an archived sandbox leaves the source archived; a parent with a live fork is destroyed after it', async () => {
    const provider = providerFor({ tier: 'archive', autoStopAfter: 0 });
    const statebox = createStatebox({ provider });
    const source = await statebox.create();
    await source.writeFile('state.txt', 'archived state');
    await source.suspend();
    const child = await source.fork({ labels: { role: 'child' } });
    expect(await daytonaState(provider, source.id)).toBe('archived');
    expect(await child.readFile('state.txt', 'utf8')).toBe('archived state');
    expect(child.info.parentId).toBe(source.id);
    // Daytona refuses to delete a parent with live forks: statebox hides it at once, deletes it with the child.
    await source.destroy();
    await expect(statebox.get(source.id)).rejects.toSatisfy(SandboxNotFoundError.isInstance);
    expect(daytonaTest!.emulator.state.sandboxes.has(source.id)).toBe(true);
    await child.destroy();
    expect(daytonaTest!.emulator.state.sandboxes.has(source.id)).toBe(false);
  });
});

run(`daytona error mapping${skip ? ` (skipped: ${skip})` : ''}`, async () => {
  const daytonaTest = skip ? undefined : await startDaytonaForTests({});
  afterAll(() => daytonaTest?.close());

  it('an unknown id is SandboxNotFoundError with a readable message, never [object Object]', async () => {
    const error = await daytonaTest!.provider.get('no-such-sandbox').catch((caught: unknown) => caught);
    expect(SandboxNotFoundError.isInstance(error), String(error)).toBe(true);
    expect((error as Error).message).toContain('no-such-sandbox');
    expect((error as Error).message).not.toContain('[object Object]');
    const exec = await daytonaTest!.provider
      .exec('no-such-sandbox', { command: 'true', cwd: '/workspace', maxOutputBytes: 100 })
      .catch((caught: unknown) => caught);
    expect(SandboxNotFoundError.isInstance(exec), String(exec)).toBe(true);
    await expect(daytonaTest!.provider.destroy('no-such-sandbox')).resolves.toBeUndefined();
  });

  it('a refused connection is TransientError, not not-found', async () => {
    const provider = daytona({ apiKey: 'k', apiUrl: 'http://127.0.0.1:9/api', target: 'us', polling: true });
    const error = await provider.get('anything').catch((caught: unknown) => caught);
    expect(TransientError.isInstance(error), String(error)).toBe(true);
  });

  it('a rate limit (429) is TransientError that says to retry', async () => {
    daytonaTest!.emulator.server.faults.add({
      method: 'GET',
      path: /^\/api\/sandbox\//,
      status: 429,
      message: 'slow down',
    });
    const error = await daytonaTest!.provider.get('any').catch((caught: unknown) => caught);
    expect(TransientError.isInstance(error), String(error)).toBe(true);
    expect((error as Error).message).toMatch(/rate limited.*[Rr]etry/);
  });

  it('a wrong key is a ProviderError naming DAYTONA_API_KEY; no key at all is a ConfigError', async () => {
    const wrong = daytonaTest!.newProvider({ apiKey: 'wrong' });
    const error = await wrong.list().catch((caught: unknown) => caught);
    expect((error as Error).name).toBe('ProviderError');
    expect((error as Error).message).toContain('DAYTONA_API_KEY');
    const saved = process.env.DAYTONA_API_KEY;
    delete process.env.DAYTONA_API_KEY;
    try {
      expect(() => daytona()).toThrow(ConfigError);
    } finally {
      if (saved !== undefined) process.env.DAYTONA_API_KEY = saved;
    }
  });

  it('Daytona refuses to archive a running sandbox (the emulator keeps the documented rule)', async () => {
    const box = await createStatebox({ provider: daytonaTest!.provider }).create();
    try {
      const sandbox = await daytonaTest!.provider.client.get(box.id);
      await expect(sandbox.archive()).rejects.toThrow(/must be stopped/);
      expect(sandbox.state).toBe('started');
    } finally {
      await box.destroy();
    }
  });

  it('the SDK called no route the emulator does not know', () => {
    expect(daytonaTest!.emulator.server.unhandled).toEqual([]);
    const list = daytonaTest!.emulator.server.requests.find('GET', '/api/sandbox');
    expect(list).toBeDefined();
  });
});

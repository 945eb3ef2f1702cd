import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { run, skip, useSandboxes } from './helpers.js';

const { provider, created } = useSandboxes();
const fixture = fileURLToPath(new URL('./fixtures/operation.mjs', import.meta.url));
const dist = fileURLToPath(new URL('../dist/index.js', import.meta.url));

describe.skipIf(Boolean(skip) || !existsSync(dist))(
  `docker: operations from several processes${skip ? ` (skipped: ${skip})` : ''}`,
  () => {
    it('get() from another process never disturbs a fork: every fork succeeds, every get answers running', async () => {
      const instance = provider();
      const source = (await instance.create({})).id;
      created.push(source);
      await run(instance, source, 'echo kept > kept');
      const child = spawn(process.execPath, [fixture, 'get-loop', source, '6000'], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let output = '';
      child.stdout.on('data', (chunk: Buffer) => {
        output += chunk.toString();
      });
      while (!output.includes('go')) await new Promise((resolve) => setTimeout(resolve, 20));
      let forks = 0;
      const started = Date.now();
      while (Date.now() - started < 4500) {
        const fork = await instance.fork(source);
        created.push(fork.id);
        forks++;
        expect(await run(instance, fork.id, 'cat kept')).toBe('kept\n');
      }
      await once(child, 'exit');
      const seen = JSON.parse(output.split('\n').find((line) => line.startsWith('{'))!) as {
        gets: number;
        errors: string[];
        statuses: Record<string, number>;
      };
      console.log(`get during fork: ${forks} forks, ${seen.gets} gets from another process`, seen.statuses);
      expect(forks).toBeGreaterThan(2);
      expect(seen.gets).toBeGreaterThan(forks);
      expect(seen.errors).toEqual([]);
      expect(Object.keys(seen.statuses)).toEqual(['running']);
      expect(await run(instance, source, 'cat kept')).toBe('kept\n');
    });

    it('forks of one source from two provider instances (two lock holders) all succeed', async () => {
      const [first, second] = [provider(), provider()];
      const source = (await first.create({})).id;
      created.push(source);
      await run(first, source, 'echo base > base');
      const forks = await Promise.all([
        first.fork(source),
        second.fork(source),
        first.fork(source),
        second.fork(source),
      ]);
      created.push(...forks.map((fork) => fork.id));
      for (const fork of forks) expect(await run(first, fork.id, 'cat base')).toBe('base\n');
      expect((await second.get(source)).status).toBe('running');
    });
  },
);

import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { DockerProvider } from '../src/index.js';
import { encoder, run, skip, useSandboxes } from './helpers.js';

/**
 * Kill-at-any-point: a separate Node process runs one operation on a sandbox through the built package
 * and is SIGKILLed after a random delay; then this process checks that the next operation works, that the
 * files are intact (a hash manifest written before), and that nothing is left that would wedge later
 * operations. STATEBOX_SOAK=1 runs five times as many trials.
 */
const { provider, created } = useSandboxes();
const fixture = fileURLToPath(new URL('./fixtures/operation.mjs', import.meta.url));
const dist = fileURLToPath(new URL('../dist/index.js', import.meta.url));
const soak = process.env.STATEBOX_SOAK === '1' ? 5 : 1;
const TRIALS = { fork: 6 * soak, suspend: 4 * soak, writeFile: 6 * soak, destroy: 3 * soak };
const report: Record<string, { trials: number; killed: number; repaired: number; delays: number[] }> = {};

/**
 * Runs the operation in a child process and kills it `0..spanMs` after it starts the operation; without
 * a span, lets it finish and returns how long it took (`delay`), to calibrate the trials.
 */
async function runKilled(args: string[], spanMs?: number): Promise<{ killed: boolean; delay: number }> {
  const child = spawn(process.execPath, [fixture, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let delay = spanMs === undefined ? 0 : Math.floor(Math.random() * spanMs);
  let output = '';
  let timer: NodeJS.Timeout | undefined;
  let started = 0;
  child.stdout.on('data', (chunk: Buffer) => {
    output += chunk.toString();
    if (!started && output.includes('go')) {
      started = performance.now();
      if (spanMs !== undefined) timer = setTimeout(() => child.kill('SIGKILL'), delay);
    }
    if (spanMs === undefined && output.includes('done')) delay = Math.round(performance.now() - started);
  });
  child.stderr.resume();
  await once(child, 'exit');
  if (timer) clearTimeout(timer);
  const killed = child.signalCode === 'SIGKILL';
  if (!killed) expect(output, `the operation finished without a kill: ${output}`).toContain('done');
  return { killed, delay };
}

function record(operation: string, result: { killed: boolean; delay: number; journal?: boolean }): void {
  const entry = report[operation] ?? { trials: 0, killed: 0, repaired: 0, delays: [] };
  report[operation] = entry;
  entry.trials++;
  if (result.killed) entry.killed++;
  if (result.journal) entry.repaired++;
  entry.delays.push(result.delay);
}

/** Files of every kind, and their hashes, modes and link: what must survive every trial. */
async function writeManifest(instance: DockerProvider, sandboxId: string): Promise<string> {
  await run(
    instance,
    sandboxId,
    'mkdir -p m && head -c 1048576 /dev/urandom > m/random && echo text > m/text && chmod 751 m/text && ' +
      'ln -s text m/link && echo root > /root/rootfs-file',
  );
  return manifest(instance, sandboxId);
}

async function manifest(instance: DockerProvider, sandboxId: string): Promise<string> {
  return run(
    instance,
    sandboxId,
    'cd m && sha256sum random text && stat -c "%n %a" random text && readlink link && cat /root/rootfs-file',
  );
}

/** Containers of the sandbox under another name than its own, and its fork journal: a fork's leftovers. */
function leftovers(sandboxId: string, stateDir: string): string[] {
  const names = execFileSync(
    'docker',
    ['ps', '-a', '--format', '{{.Names}}', '--filter', `label=statebox.id=${sandboxId}`],
    {
      encoding: 'utf8',
    },
  )
    .split('\n')
    .filter((name) => name && name !== `statebox-${sandboxId}`);
  const journal = `${stateDir}/locks/${sandboxId}.fork.json`;
  return [...names, ...(existsSync(journal) ? [journal] : [])];
}

describe.skipIf(Boolean(skip) || !existsSync(dist))(
  `docker: a process killed at any point of an operation${skip ? ` (skipped: ${skip})` : !existsSync(dist) ? ' (skipped: build the package first)' : ''}`,
  () => {
    it(`fork (${TRIALS.fork} trials): the source runs with its files; a child is complete or absent; nothing wedges`, async () => {
      const instance = provider();
      const source = (await instance.create({})).id;
      created.push(source);
      const expected = await writeManifest(instance, source);
      const known = new Set<string>();
      // How long a fork takes from the child's start of it, so that the kills land inside it.
      const { delay: span } = await runKilled(['fork', source]);
      for (let trial = 0; trial < TRIALS.fork; trial++) {
        const result = await runKilled(['fork', source], span);
        // A fork killed half-way leaves its journal: the next operation finishes or undoes it.
        record('fork', {
          ...result,
          journal: existsSync(`${instance.options.stateDir}/locks/${source}.fork.json`),
        });
        // The next operation, from this other process, repairs: the source runs with every file.
        expect((await instance.get(source)).status).toBe('running');
        expect(await manifest(instance, source)).toBe(expected);
        for (const child of await instance.list()) {
          if (child.parentId !== source || known.has(child.id)) continue;
          known.add(child.id);
          created.push(child.id);
          expect(await manifest(instance, child.id), `child ${child.id} of trial ${trial}`).toBe(expected);
        }
        // Later operations are not wedged, and leave nothing behind.
        const other = provider();
        const next = await other.fork(source);
        known.add(next.id);
        created.push(next.id);
        expect(await manifest(other, next.id)).toBe(expected);
        await other.close(); // waits for the retired original's removal
        expect(leftovers(source, instance.options.stateDir)).toEqual([]);
      }
    });

    it(`suspend (${TRIALS.suspend} trials): resume and exec work after, with every file`, async () => {
      const instance = provider();
      const sandbox = (await instance.create({})).id;
      created.push(sandbox);
      const expected = await writeManifest(instance, sandbox);
      await run(instance, sandbox, 'sleep 100 >/dev/null 2>&1 &');
      const { delay: span } = await runKilled(['suspend', sandbox]);
      await instance.resume(sandbox);
      for (let trial = 0; trial < TRIALS.suspend; trial++) {
        await run(instance, sandbox, 'sleep 100 >/dev/null 2>&1 &');
        record('suspend', await runKilled(['suspend', sandbox], span));
        expect((await instance.resume(sandbox)).status).toBe('running');
        expect(await manifest(instance, sandbox)).toBe(expected);
        await instance.suspend(sandbox);
        await instance.resume(sandbox);
      }
    });

    it(`destroy (${TRIALS.destroy} trials): destroying again removes every container, volume and layer`, async () => {
      const instance = provider();
      let span: number | undefined;
      for (let trial = 0; trial < TRIALS.destroy; trial++) {
        const source = (await instance.create({})).id;
        await writeManifest(instance, source);
        const child = (await instance.fork(source)).id;
        created.push(source, child); // destroyed below; listed for clean-up if an assertion fails first
        const layers = execFileSync(
          'docker',
          ['volume', 'ls', '-q', '--filter', `label=statebox.id=${source}`],
          {
            encoding: 'utf8',
          },
        )
          .split('\n')
          .filter(Boolean)
          .flatMap((volume) =>
            JSON.parse(execFileSync('docker', ['volume', 'inspect', volume], { encoding: 'utf8' }))[0].Labels[
              'statebox.layers'
            ].split(','),
          )
          .filter((layer: string) => layer !== 'empty');
        if (span === undefined) {
          span = (await runKilled(['destroy', source])).delay;
        } else {
          record('destroy', await runKilled(['destroy', source], span));
        }
        await instance.destroy(source);
        await expect(instance.get(source)).rejects.toThrow(/not found/);
        expect(leftovers(source, instance.options.stateDir)).toEqual([]);
        expect(
          execFileSync('docker', ['volume', 'ls', '-q', '--filter', `label=statebox.id=${source}`], {
            encoding: 'utf8',
          }),
        ).toBe('');
        // The child still stands on the shared layers; once it goes, they go.
        expect(await manifest(instance, child)).toBeTruthy();
        await instance.destroy(child);
        for (const layer of layers)
          expect(existsSync(`${instance.options.stateDir}/l/${layer}`), layer).toBe(false);
      }
    });

    it(`writeFile (${TRIALS.writeFile} trials): the file holds the old content or the new, never a mix`, async () => {
      const instance = provider();
      const sandbox = (await instance.create({})).id;
      created.push(sandbox);
      const expected = await writeManifest(instance, sandbox);
      const size = 8 * 1024 * 1024;
      const hashOf = async (byte: string) =>
        run(instance, sandbox, `head -c ${size} /dev/zero | tr '\\0' '${byte}' | sha256sum | cut -d' ' -f1`);
      const [oldHash, newHash] = [await hashOf('o'), await hashOf('n')];
      const { delay: span } = await runKilled(['writeFile', sandbox, String(size)]);
      for (let trial = 0; trial < TRIALS.writeFile; trial++) {
        await instance.writeFile(sandbox, '/workspace/m/big', new Uint8Array(size).fill(0x6f));
        record('writeFile', await runKilled(['writeFile', sandbox, String(size)], span));
        const hash = await run(instance, sandbox, 'sha256sum m/big | cut -d" " -f1');
        expect([oldHash, newHash]).toContain(hash);
        expect(await manifest(instance, sandbox)).toBe(expected);
        // The next write works.
        await instance.writeFile(sandbox, '/workspace/m/after', encoder.encode(`trial ${trial}\n`));
      }
      // A killed writer can leave its temporary file (hidden, removed by a later write after 10 minutes).
      const temporary = Number(await run(instance, sandbox, 'ls -a m | grep -c statebox-write || true'));
      console.log(`writeFile: ${temporary} temporary file(s) left by killed writers`);
      console.log('crash trials (delays in ms after the operation started):', JSON.stringify(report));
    });
  },
);

import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  ConfigError,
  createStatebox,
  InvalidStateError,
  type Sandbox,
  SandboxNotFoundError,
  UnsupportedCapabilityError,
} from '@statebox/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Home, type SandboxRecord } from '../src/home.js';
import { createFromConfig, local } from '../src/index.js';
import { localSuiteSkip } from '../src/testing.js';

/** Local sandboxes need Linux namespaces and overlayfs: each suite here is skipped, with the reason, without them. */
const skip = localSuiteSkip();
const skipped = skip ? ` (skipped: ${skip})` : '';

const run = promisify(execFile);
let home: string;
const boxes: Sandbox[] = [];
const statebox = () => createStatebox({ provider: local({ home }) });

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'statebox-state-'));
});

afterAll(async () => {
  for (const box of boxes) await box.destroy().catch(() => undefined);
  await rm(home, { recursive: true, force: true });
});

async function create(): Promise<Sandbox> {
  const box = await statebox().create();
  boxes.push(box);
  return box;
}

async function record(id: string): Promise<SandboxRecord> {
  return JSON.parse(await readFile(join(home, 'sandboxes', id, 'sandbox.json'), 'utf8'));
}

/** Runs a snippet in a separate Node process against the built package, as another orchestrator would. */
async function inOtherProcess(code: string): Promise<string> {
  const script = `import { createStatebox } from '@statebox/core'; import { local } from '@statebox/local';
const statebox = createStatebox({ provider: local({ home: ${JSON.stringify(home)} }) });
${code}`;
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], {
    cwd: join(import.meta.dirname, '..'),
  });
  return stdout;
}

describe.skipIf(Boolean(skip))(`local state${skipped}`, () => {
  it('is resumed, read and forked by another process', async () => {
    const box = await create();
    await box.writeFile('evening.txt', 'written in the evening');
    await box.suspend();
    const output = await inOtherProcess(`
const box = await statebox.get(${JSON.stringify(box.id)});
await box.resume();
const child = await box.fork({ labels: { made: 'elsewhere' } });
console.log(await box.readFile('evening.txt', 'utf8'));
console.log(child.id);`);
    const [text, childId] = output.trim().split('\n');
    expect(text).toBe('written in the evening');
    const child = await statebox().get(childId!);
    boxes.push(child);
    expect(child.labels).toEqual({ made: 'elsewhere' });
    expect(await child.readFile('evening.txt', 'utf8')).toBe('written in the evening');
  });

  it('forks concurrently from several processes without corrupting the source', async () => {
    const box = await create();
    await box.writeFile('base.txt', 'base');
    const outputs = await Promise.all(
      [1, 2, 3].map((n) =>
        inOtherProcess(`
const child = await (await statebox.get(${JSON.stringify(box.id)})).fork();
await child.writeFile('mine.txt', '${n}');
console.log(child.id);`),
      ),
    );
    const children = await Promise.all(outputs.map((output) => statebox().get(output.trim())));
    boxes.push(...children);
    for (const [index, child] of children.entries()) {
      expect(await child.readFile('base.txt', 'utf8')).toBe('base');
      expect(await child.readFile('mine.txt', 'utf8')).toBe(String(index + 1));
    }
    expect((await box.exec('ls')).stdout).toBe('base.txt\n');
  });

  it('restarts a running sandbox whose init died (a crash or a reboot), keeping its files', async () => {
    const box = await create();
    await box.writeFile('kept.txt', 'kept');
    const { runtime } = await record(box.id);
    process.kill(runtime!.supervisorPid, 'SIGKILL');
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(await box.readFile('kept.txt', 'utf8')).toBe('kept');
    expect((await record(box.id)).runtime!.initPid).not.toBe(runtime!.initPid);
  });

  it('rolls an interrupted seal forward when the layer was already moved', async () => {
    const box = await create();
    await box.writeFile('sealed.txt', 'sealed');
    await box.suspend();
    const before = await record(box.id);
    const pending = { from: before.upper, layerId: 'abcdef123456', to: 'u-crashed1' };
    await writeFile(
      join(home, 'sandboxes', box.id, 'sandbox.json'),
      JSON.stringify({ ...before, pendingSeal: pending }),
    );
    await rename(join(home, 'sandboxes', box.id, before.upper), join(home, 'layers', pending.layerId));
    await box.resume();
    expect(await box.readFile('sealed.txt', 'utf8')).toBe('sealed');
    const after = await record(box.id);
    expect(after.pendingSeal).toBeUndefined();
    expect(after.layers[0]).toBe(pending.layerId);
  });

  it('rolls an interrupted seal back when nothing was moved yet', async () => {
    const box = await create();
    await box.writeFile('kept.txt', 'kept');
    await box.suspend();
    const before = await record(box.id);
    await writeFile(
      join(home, 'sandboxes', box.id, 'sandbox.json'),
      JSON.stringify({
        ...before,
        pendingSeal: { from: before.upper, layerId: '0123456789ab', to: 'u-never' },
      }),
    );
    await box.resume();
    expect(await box.readFile('kept.txt', 'utf8')).toBe('kept');
    expect((await record(box.id)).upper).toBe(before.upper);
  });

  it('takes over a lock left by a dead process', async () => {
    const box = await create();
    await writeFile(join(home, 'locks', `${box.id}.lock`), '999999 12345\n');
    await box.suspend();
    expect(box.status).toBe('suspended');
  });

  it('compacts a long fork chain and keeps every generation', async () => {
    const provider = local({ home, maxLayers: 3 });
    let box = await createStatebox({ provider }).create();
    boxes.push(box);
    for (let generation = 0; generation < 6; generation++) {
      await box.writeFile(`generation-${generation}.txt`, String(generation));
      await box.exec(`rm -f generation-${generation - 2}.txt`);
      box = await box.fork();
      boxes.push(box);
    }
    expect((await box.exec('ls')).stdout).toBe('generation-4.txt\ngeneration-5.txt\n');
    expect((await record(box.id)).layers.length).toBeLessThanOrEqual(4);
  });

  it('deletes layers nobody uses once their sandboxes are destroyed', async () => {
    const separateHome = await mkdtemp(join(tmpdir(), 'statebox-gc-'));
    const client = createStatebox({ provider: local({ home: separateHome }) });
    const box = await client.create();
    await box.writeFile('a.txt', 'a');
    const child = await box.fork();
    await child.writeFile('b.txt', 'b');
    const grandchild = await child.fork();
    for (const sandbox of [grandchild, child, box]) await sandbox.destroy();
    expect(readdirSync(join(separateHome, 'layers'))).toEqual(['empty']);
    expect(readdirSync(join(separateHome, 'sandboxes'))).toEqual([]);
    await rm(separateHome, { recursive: true, force: true });
  });

  it('refuses images and unknown options with errors that say what to do', async () => {
    await expect(statebox().create({ image: 'debian' })).rejects.toSatisfy(
      UnsupportedCapabilityError.isInstance,
    );
    expect(() => createFromConfig({ networking: true }, {})).toThrow(/networking/);
    expect(() => createFromConfig({ maxLayers: 1 }, {})).toSatisfy(() => {
      try {
        createFromConfig({ maxLayers: 1 }, {});
        return false;
      } catch (error) {
        return ConfigError.isInstance(error) && error.option === 'maxLayers';
      }
    });
  });

  it('refuses exec on a suspended sandbox and names the fix', async () => {
    const box = await create();
    await box.suspend();
    const error = await box.exec('true').catch((caught: unknown) => caught);
    expect(InvalidStateError.isInstance(error)).toBe(true);
    expect((error as Error).message).toMatch(/resume\(\)/);
  });

  it("keeps state with durability 'fsync' too, where fsync inside the sandbox works", async () => {
    const client = createStatebox({ provider: local({ home, durability: 'fsync' }) });
    const box = await client.create();
    boxes.push(box);
    await box.writeFile('durable.txt', 'flushed');
    expect((await box.exec('sync; echo $?')).stdout.trim()).toBe('0');
    await box.suspend();
    await box.resume();
    expect(await box.readFile('durable.txt', 'utf8')).toBe('flushed');
    expect(() => createFromConfig({ durability: 'never' }, {})).toThrow(/durability/);
  });

  it('forks a running source with a small upper layer by copying it frozen: the source keeps its processes', async () => {
    const box = await create();
    await box.exec('mkdir -p keep gone/sub && echo 1 > keep/a && echo 2 > gone/sub/b && echo 3 > file');
    const first = await box.fork();
    boxes.push(first);
    // Now the upper is fresh: a deletion (whiteout), a replaced directory (opaque) and a new file.
    await box.exec('rm file && rm -rf gone && mkdir gone && echo new > gone/c && echo 4 > keep/a');
    await box.exec('sleep 4711 >/dev/null 2>&1 &');
    const before = (await record(box.id)).runtime!.initPid;
    const child = await box.fork();
    boxes.push(child);
    expect((await record(box.id)).runtime!.initPid).toBe(before);
    expect(
      (await box.exec('for p in /proc/[0-9]*; do cat $p/cmdline 2>/dev/null | tr "\\0" " "; echo; done'))
        .stdout,
    ).toContain('sleep 4711');
    expect((await child.exec('ls -R gone; cat keep/a; ls file 2>&1 || true')).stdout).toBe(
      "gone:\nc\n4\nls: cannot access 'file': No such file or directory\n",
    );
    await child.writeFile('only-child', 'c');
    await box.writeFile('only-source', 's');
    expect((await box.exec('ls')).stdout).toBe('gone\nkeep\nonly-source\n');
    expect((await child.exec('ls')).stdout).toBe('gone\nkeep\nonly-child\n');
    expect((await first.exec('ls gone/sub; cat file')).stdout).toBe('b\n3\n');
  });

  it('reuses the copy of an unchanged running upper for further forks, and copies again after a change', async () => {
    const box = await create();
    await box.writeFile('base.txt', 'base');
    boxes.push(await box.fork());
    await box.writeFile('fresh.txt', 'one');
    const [a, b] = [await box.fork(), await box.fork()];
    boxes.push(a, b);
    expect((await record(b.id)).layers[0]).toBe((await record(a.id)).layers[0]);
    await box.writeFile('fresh.txt', 'two');
    const c = await box.fork();
    boxes.push(c);
    expect((await record(c.id)).layers[0]).not.toBe((await record(a.id)).layers[0]);
    expect(await a.readFile('fresh.txt', 'utf8')).toBe('one');
    expect(await c.readFile('fresh.txt', 'utf8')).toBe('two');
    await a.destroy();
    await b.destroy();
    // The source still points at that copy for reuse, so destroying its forks must not collect it.
    const d = await box.fork();
    boxes.push(d);
    expect(await d.readFile('fresh.txt', 'utf8')).toBe('two');
  });

  it('seals instead when the upper layer is too large to copy (the source is restarted)', async () => {
    const box = await create();
    await box.exec('mkdir many && cd many && i=0; while [ $i -lt 4100 ]; do : > f$i; i=$((i+1)); done');
    const before = (await record(box.id)).runtime!.initPid;
    const child = await box.fork();
    boxes.push(child);
    expect((await record(box.id)).runtime!.initPid).not.toBe(before);
    expect((await child.exec('ls many | wc -l')).stdout.trim()).toBe('4100');
  });

  it('reads STATEBOX_HOME and STATEBOX_LOCAL_* in local() as createFromConfig does; options win', () => {
    const saved = { home: process.env.STATEBOX_HOME, uid: process.env.STATEBOX_LOCAL_UID };
    try {
      process.env.STATEBOX_HOME = home;
      expect(local().home.root).toBe(home);
      expect(local({ home: `${home}-option` }).home.root).toBe(`${home}-option`);
      process.env.STATEBOX_LOCAL_UID = '0';
      expect(() => local({ home })).toThrow(ConfigError);
      expect(() => createFromConfig({ home }, process.env)).toThrow(ConfigError);
      expect(() => local({ home, sandboxUid: 1_999_990_001 })).not.toThrow();
    } finally {
      for (const [key, value] of [
        ['STATEBOX_HOME', saved.home],
        ['STATEBOX_LOCAL_UID', saved.uid],
      ] as const) {
        if (value === undefined) delete process.env[key];
        else process.env[key] = value;
      }
    }
  });

  it('names new sandboxes sb-<16 hex>, and keeps using a sandbox whose sbx- id an older version gave', async () => {
    const box = await create();
    expect(box.id).toMatch(/^sb-[0-9a-f]{16}$/);
    await box.writeFile('kept.txt', 'from before');
    await box.suspend();
    const oldId = box.id.replace(/^sb-/, 'sbx-');
    const saved = await record(box.id);
    await rename(join(home, 'sandboxes', box.id), join(home, 'sandboxes', oldId));
    await writeFile(join(home, 'sandboxes', oldId, 'sandbox.json'), JSON.stringify({ ...saved, id: oldId }));
    const old = await statebox().get(oldId);
    boxes.push(old);
    await old.resume();
    expect((await old.exec('cat kept.txt')).stdout).toBe('from before');
    const child = await old.fork();
    boxes.push(child);
    expect(child.id).toMatch(/^sb-/);
    expect((await child.exec('cat kept.txt')).stdout).toBe('from before');
    expect((await statebox().list()).map((info) => info.id)).toEqual(
      expect.arrayContaining([oldId, child.id]),
    );
    await old.destroy();
    await expect(statebox().get(oldId)).rejects.toBeInstanceOf(SandboxNotFoundError);
  });

  it('reads the state directory from STATEBOX_HOME', () => {
    const provider = createFromConfig({}, { STATEBOX_HOME: home });
    expect((provider as ReturnType<typeof local>).home.root).toBe(home);
    expect(new Home(home).layersDir).toBe(join(home, 'layers'));
  });
});

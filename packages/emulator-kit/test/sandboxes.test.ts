import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createStatebox } from '@statebox/core';
import { local } from '@statebox/local';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { EMULATOR_LABEL, VENDOR_ID_LABEL } from '../src/index.js';
import { startToyVendor, TOY_KEY, type ToyVendor } from './toy-vendor.js';

let home: string;
let toy: ToyVendor;
const headers = { 'x-toy-key': TOY_KEY, 'content-type': 'application/json' };

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'statebox-emulator-kit-'));
  toy = await startToyVendor({ provider: local({ home }) });
});

afterAll(async () => {
  await toy?.close();
  await rm(home, { recursive: true, force: true });
});

describe('sandboxes backed by a statebox provider', () => {
  test('a command sent through the vendor API really runs, in a labelled sandbox', async () => {
    const created = await fetch(`${toy.url}/v1/sandboxes`, { method: 'POST', headers });
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as { id: string };
    const run = (command: string) =>
      fetch(`${toy.url}/v1/sandboxes/${id}/exec`, {
        method: 'POST',
        headers,
        body: JSON.stringify({ command }),
      }).then((response) => response.json());
    await run('echo state > kept.txt');
    expect(await run('cat kept.txt; echo oops >&2; exit 3')).toEqual({
      exit_code: 3,
      stdout: 'state\n',
      stderr: 'oops\n',
    });
    const sandbox = toy.sandboxes!.get(id)!;
    expect(sandbox.labels).toMatchObject({ [EMULATOR_LABEL]: 'toy', [VENDOR_ID_LABEL]: id });
    const missing = await fetch(`${toy.url}/v1/sandboxes/sbx-nope/exec`, {
      method: 'POST',
      headers,
      body: '{"command":"true"}',
    });
    expect(missing.status).toBe(404);
  });

  test('fork gives an independent copy; close() destroys every sandbox of the instance', async () => {
    const backing = toy.sandboxes!;
    const parent = await backing.create('parent');
    await parent.writeFile('/workspace/a.txt', 'from parent');
    const child = await backing.fork('parent', 'child');
    await child.writeFile('/workspace/a.txt', 'from child');
    expect(await parent.readFile('/workspace/a.txt', 'utf8')).toBe('from parent');
    expect(backing.ids).toEqual(expect.arrayContaining(['parent', 'child']));
    await backing.close();
    const left = await createStatebox({ provider: local({ home }) }).list({ labels: backing.labels });
    expect(left).toEqual([]);
    expect(backing.ids).toEqual([]);
  });
});

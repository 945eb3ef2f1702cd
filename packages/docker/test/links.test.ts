import { describe, expect, it } from 'vitest';
import type { DockerProvider } from '../src/index.js';
import { run, skip, useSandboxes } from './helpers.js';

const { provider, created } = useSandboxes();

/** Content of both names and their link counts and inode equality, as one line. */
async function linkState(
  instance: DockerProvider,
  sandboxId: string,
  first: string,
  second: string,
): Promise<string> {
  return run(
    instance,
    sandboxId,
    `echo "$(cat ${first} | tr '\\n' ,) $(cat ${second} | tr '\\n' ,) $(stat -c %h ${first}) $(stat -c %h ${second}) ` +
      `$([ "$(stat -c %i ${first})" = "$(stat -c %i ${second})" ] && echo same || echo split)"`,
  );
}

describe.skipIf(Boolean(skip))(`docker hard links${skip ? ` (skipped: ${skip})` : ''}`, () => {
  it('in /workspace, two names stay one file across forks, on both sides, generation after generation', async () => {
    const instance = provider();
    const source = (await instance.create({})).id;
    created.push(source);
    await run(instance, source, 'echo 1 > a && ln a b');
    const child = (await instance.fork(source)).id;
    created.push(child);
    await run(instance, child, 'echo child >> a');
    await run(instance, source, 'echo parent >> b');
    expect(await linkState(instance, child, 'a', 'b')).toBe('1,child, 1,child, 2 2 same\n');
    expect(await linkState(instance, source, 'a', 'b')).toBe('1,parent, 1,parent, 2 2 same\n');
    // The child wrote through a name of a file in a sealed layer: its next fork seals the pair whole.
    const grandchild = (await instance.fork(child)).id;
    created.push(grandchild);
    await run(instance, grandchild, 'echo grandchild >> b');
    expect(await linkState(instance, grandchild, 'a', 'b')).toBe(
      '1,child,grandchild, 1,child,grandchild, 2 2 same\n',
    );
    expect(await linkState(instance, child, 'a', 'b')).toBe('1,child, 1,child, 2 2 same\n');
  });

  it('a suspended source, a deleted name, and a third name in a new directory keep the group whole', async () => {
    const instance = provider();
    const source = (await instance.create({})).id;
    created.push(source);
    await run(instance, source, 'mkdir -p d && echo 1 > d/a && ln d/a d/b && ln d/a d/c');
    created.push((await instance.fork(source)).id);
    await run(instance, source, 'echo 2 >> d/a && rm d/c && mkdir -p e/f && ln d/b e/f/g');
    await instance.suspend(source);
    const child = (await instance.fork(source)).id;
    created.push(child);
    await run(instance, child, 'echo 3 >> e/f/g');
    expect(await linkState(instance, child, 'd/a', 'd/b')).toBe('1,2,3, 1,2,3, 3 3 same\n');
    expect(await linkState(instance, child, 'd/a', 'e/f/g')).toBe('1,2,3, 1,2,3, 3 3 same\n');
    expect(await run(instance, child, 'test -e d/c || echo gone')).toBe('gone\n');
  });

  it('flattening the layer stack keeps link counts', async () => {
    const instance = provider({ maxLayers: 2 });
    const source = (await instance.create({})).id;
    created.push(source);
    await run(instance, source, 'echo 1 > a && ln a b');
    for (let generation = 0; generation < 4; generation++) {
      created.push((await instance.fork(source)).id);
      await run(instance, source, `echo ${generation} >> a`);
    }
    const child = (await instance.fork(source)).id;
    created.push(child);
    expect(await linkState(instance, child, 'a', 'b')).toBe('1,0,1,2,3, 1,0,1,2,3, 2 2 same\n');
    await run(instance, child, 'echo x >> b');
    expect(await linkState(instance, child, 'a', 'b')).toBe('1,0,1,2,3,x, 1,0,1,2,3,x, 2 2 same\n');
  });

  it('in the root filesystem too: a fork seeds the new containers with the group, so a write shows through both names', async () => {
    const instance = provider();
    const source = (await instance.create({})).id;
    created.push(source);
    await run(instance, source, 'mkdir -p /root/x && echo 1 > /root/x/a && ln /root/x/a /root/x/b');
    const child = (await instance.fork(source)).id;
    created.push(child);
    await run(instance, child, 'echo 2 >> /root/x/a');
    await run(instance, source, 'echo 3 >> /root/x/b');
    expect(await linkState(instance, child, '/root/x/a', '/root/x/b')).toBe('1,2, 1,2, 2 2 same\n');
    expect(await linkState(instance, source, '/root/x/a', '/root/x/b')).toBe('1,3, 1,3, 2 2 same\n');
    // And through the squash that keeps image chains short.
    const squashing = provider({ maxImageDepth: 2 });
    const grandchild = (await squashing.fork(child)).id;
    created.push(grandchild);
    await run(squashing, grandchild, 'echo 4 >> /root/x/b');
    expect(await linkState(squashing, grandchild, '/root/x/a', '/root/x/b')).toBe('1,2,4, 1,2,4, 2 2 same\n');
  });
});

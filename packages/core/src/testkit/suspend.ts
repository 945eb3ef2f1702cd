import { describe, expect } from 'vitest';
import type { SandboxCapabilities } from '../capabilities.js';
import { InvalidStateError } from '../errors.js';
import type { Sandbox } from '../sandbox.js';
import { createStatebox } from '../statebox.js';
import type { SuiteContext } from './context.js';
import {
  allByteValues,
  expectError,
  liveness,
  randomData,
  randomSuffix,
  run,
  sha256,
  sha256Inside,
  shellQuote,
  startHeartbeat,
} from './helpers.js';

export function describeSuspend(suite: SuiteContext): void {
  const { capabilities } = suite;
  const noSuspend = capabilities.suspend === 'none' ? "provider declares suspend: 'none'" : undefined;

  describe('suspend and resume', () => {
    suite.test(
      'keeps every byte, mode and symlink, and a fresh provider instance can resume it',
      async () => {
        const box = await suite.create({ labels: { purpose: 'suspend fidelity' } });
        const tree = await writeTree(box, capabilities);

        const suspended = await box.suspend();
        expect(suspended.status).toBe('suspended');
        expect(box.status).toBe('suspended');
        expect((await suite.provider().get(box.id)).status).toBe('suspended');
        await expectError(() => box.exec('true'), InvalidStateError, 'exec on a suspended sandbox');

        const fresh = createStatebox({ provider: await suite.freshProvider() });
        const again = await fresh.get(box.id);
        expect(again.status).toBe('suspended');
        expect((await again.resume()).status).toBe('running');
        await verifyTree(again, tree, capabilities);
        expect((await box.refresh()).status).toBe('running');
      },
      noSuspend,
    );

    suite.test(
      `processes after resume match the declaration${suite.skipReason ? '' : ` suspend: '${capabilities.suspend}'`}`,
      async () => {
        const box = await suite.create({ labels: { purpose: 'suspend processes' } });
        await run(box, startHeartbeat('suspend.pid', 'suspend.beat'));
        const before = await liveness(box, 'suspend.pid', 'suspend.beat');
        // Without this control a "gone after resume" check could not fail.
        expect(before, 'a background process started by exec did not outlive its exec').toEqual({
          process: 'alive',
          beating: true,
        });
        await box.suspend();
        const fresh = createStatebox({ provider: await suite.freshProvider() });
        const again = await fresh.get(box.id);
        await again.resume();
        const after = await liveness(again, 'suspend.pid', 'suspend.beat');
        if (capabilities.suspend === 'memory') {
          expect(after, "suspend: 'memory' but the background process does not run after resume").toEqual({
            process: 'alive',
            beating: true,
          });
        } else {
          expect(after, "suspend: 'filesystem' but the background process survived").toEqual({
            process: 'gone',
            beating: false,
          });
        }
      },
      noSuspend,
    );

    suite.test(
      `keeps exactly the declared persistentPaths${capabilities.persistentPaths ? `: ${capabilities.persistentPaths.join(', ')}` : ''}`,
      async () => {
        const box = await suite.create({ labels: { purpose: 'suspend persistent paths' } });
        const name = `statebox-persist-${randomSuffix()}`;
        const kept = (capabilities.persistentPaths ?? []).map((path) => `${path}/${name}`);
        const outside = `/var/${name}`;
        for (const path of [...kept, outside]) await box.writeFile(path, path);
        await box.suspend();
        await box.resume();
        for (const path of kept) expect(new TextDecoder().decode(await box.readFile(path)), path).toBe(path);
        expect(
          (await box.exec(['sh', '-c', 'test -e "$1" && echo present || echo gone', 'sh', outside])).stdout,
          `${outside} is outside persistentPaths`,
        ).toBe('gone\n');
      },
      noSuspend ??
        (capabilities.persistentPaths
          ? undefined
          : 'provider declares no persistentPaths (the whole filesystem is kept)'),
    );

    suite.test(
      'is idempotent: suspend twice, resume twice',
      async () => {
        const box = await suite.create({ labels: { purpose: 'suspend idempotent' } });
        await box.writeFile('kept.txt', 'kept');
        expect((await box.suspend()).status).toBe('suspended');
        expect((await box.suspend()).status).toBe('suspended');
        expect((await suite.provider().suspend(box.id)).status).toBe('suspended');
        expect((await box.resume()).status).toBe('running');
        expect((await box.resume()).status).toBe('running');
        expect((await suite.provider().resume(box.id)).status).toBe('running');
        expect(await run(box, 'cat kept.txt')).toBe('kept');
      },
      noSuspend,
    );
  });
}

/** What `writeTree` wrote, to compare after a suspend or a fork. */
export type Tree = { hashes: Record<string, string> };

const unicodeName = 'tree/ünï cødé ☃.txt';

/**
 * Writes a small tree exercising what a snapshot can lose: binary bytes, a file written by exec rather
 * than writeFile, an executable mode, a symlink, nested and empty directories, a unicode name.
 */
export async function writeTree(box: Sandbox, capabilities: SandboxCapabilities): Promise<Tree> {
  const binary = new Uint8Array(Buffer.concat([allByteValues(), randomData(1024 * 1024)]));
  await box.writeFile('tree/binary.bin', binary);
  await box.writeFile('tree/a/b/c/nested.txt', 'nested\n');
  await box.writeFile(unicodeName, 'unicode ☃\n');
  await box.writeFile('tree/run.sh', '#!/bin/sh\necho ran\n', capabilities.fileModes ? { mode: 0o755 } : {});
  await run(box, 'head -c 100000 /dev/urandom > tree/exec.bin && mkdir -p tree/empty-dir');
  if (capabilities.symlinks) await run(box, 'ln -s binary.bin tree/link');
  return {
    hashes: {
      'tree/binary.bin': sha256(binary),
      'tree/exec.bin': await sha256Inside(box, 'tree/exec.bin'),
      'tree/a/b/c/nested.txt': sha256(new TextEncoder().encode('nested\n')),
      [unicodeName]: sha256(new TextEncoder().encode('unicode ☃\n')),
    },
  };
}

export async function verifyTree(box: Sandbox, tree: Tree, capabilities: SandboxCapabilities): Promise<void> {
  for (const [path, hash] of Object.entries(tree.hashes)) {
    expect(sha256(await box.readFile(path)), `readFile(${path})`).toBe(hash);
    expect(await sha256Inside(box, path), `sha256sum ${path}`).toBe(hash);
  }
  await run(box, 'test -d tree/empty-dir');
  expect(await run(box, `cat ${shellQuote(unicodeName)}`)).toBe('unicode ☃\n');
  if (capabilities.fileModes) {
    expect((await run(box, 'stat -c %a tree/run.sh')).trim()).toBe('755');
    expect(await run(box, './tree/run.sh')).toBe('ran\n');
  }
  if (capabilities.symlinks) {
    expect((await run(box, 'readlink tree/link')).trim()).toBe('binary.bin');
    await run(box, 'test -L tree/link');
    expect(sha256(await box.readFile('tree/link'))).toBe(tree.hashes['tree/binary.bin']);
  }
}

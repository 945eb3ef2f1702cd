import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import {
  FileNotFoundError,
  InvalidStateError,
  ProviderError,
  SandboxNotFoundError,
  TransientError,
} from '@statebox/core';
import { afterAll, describe, expect, it } from 'vitest';
import { createFromConfig, DEFAULT_STATE_DIR, type DockerProvider, docker } from '../src/index.js';
import { dockerSkipReason, TEST_IMAGE } from '../src/testing.js';

const skip = await dockerSkipReason();
const decoder = new TextDecoder();
const providers: DockerProvider[] = [];
const created: string[] = [];

function provider(options: Parameters<typeof docker>[0] = {}): DockerProvider {
  const instance = docker({ image: TEST_IMAGE, ...options });
  providers.push(instance);
  return instance;
}

async function run(instance: DockerProvider, sandboxId: string, command: string): Promise<string> {
  const output = await instance.exec(sandboxId, { command, cwd: '/workspace', maxOutputBytes: 1 << 20 });
  expect(output.exitCode, decoder.decode(output.stderr)).toBe(0);
  return decoder.decode(output.stdout);
}

afterAll(async () => {
  for (const instance of providers) await instance.close();
  if (skip || created.length === 0) return;
  const cleaner = docker({ image: TEST_IMAGE });
  for (const id of created) await cleaner.destroy(id);
  await cleaner.close();
});

describe('docker provider: options and errors without a daemon', () => {
  it('names the option at fault', () => {
    expect(() => docker({ suspend: 'hibernate' as 'stop' })).toThrow(/'suspend'/);
    expect(() => createFromConfig({ stateDir: 'relative' }, {})).toThrow(/'stateDir'.*absolute/);
    expect(() => createFromConfig({ colour: 'red' }, {})).toThrow(/colour/);
  });

  it('reads DOCKER_HOST and STATEBOX_DOCKER_IMAGE from the environment', () => {
    const instance = createFromConfig(
      {},
      { DOCKER_HOST: 'unix:///tmp/x.sock', STATEBOX_DOCKER_IMAGE: 'a:b' },
    );
    expect((instance as DockerProvider).options).toMatchObject({ host: 'unix:///tmp/x.sock', image: 'a:b' });
    expect((instance as DockerProvider).options.stateDir).toBe(DEFAULT_STATE_DIR);
  });

  it('an unreachable daemon is a ProviderError naming DOCKER_HOST and how to start one, never "not found"', async () => {
    const instance = provider({ host: 'unix:///tmp/statebox-no-such-docker.sock' });
    const error = await instance.get('sb-0000000000000000').catch((caught: unknown) => caught);
    expect(SandboxNotFoundError.isInstance(error)).toBe(false);
    expect(ProviderError.isInstance(error)).toBe(true);
    expect((error as Error).message).toMatch(/unix:\/\/\/tmp\/statebox-no-such-docker\.sock/);
    expect((error as Error).message).toMatch(/DOCKER_HOST/);
    expect((error as Error).message).toMatch(/dockerd/);
  });

  it('a refused connection (a daemon restarting) is a TransientError', async () => {
    const instance = provider({ host: 'tcp://127.0.0.1:1' });
    const error = await instance.list().catch((caught: unknown) => caught);
    expect(TransientError.isInstance(error)).toBe(true);
    expect((error as Error).message).toMatch(/DOCKER_HOST/);
  });
});

describe.skipIf(Boolean(skip))(
  `docker provider: adapter-specific${skip ? ` (skipped: ${skip})` : ''}`,
  () => {
    it('a missing image says how to build one without a registry', async () => {
      const instance = provider({ pull: 'never' });
      const error = await instance
        .create({ image: 'statebox/does-not-exist:never' })
        .catch((caught: unknown) => caught);
      expect(ProviderError.isInstance(error)).toBe(true);
      expect((error as Error).message).toMatch(/statebox\/does-not-exist:never/);
      expect((error as Error).message).toMatch(/build-debian-image\.sh/);
      expect((error as Error).message).toMatch(/docker pull/);
    });

    it('a container removed behind our back is SandboxNotFoundError, and destroy still resolves', async () => {
      const instance = provider();
      const info = await instance.create({});
      created.push(info.id);
      execFileSync('docker', ['rm', '-f', `statebox-${info.id}`]);
      await expect(instance.get(info.id)).rejects.toSatisfy(SandboxNotFoundError.isInstance);
      await expect(
        instance.exec(info.id, { command: 'true', cwd: '/workspace', maxOutputBytes: 100 }),
      ).rejects.toSatisfy(SandboxNotFoundError.isInstance);
      await expect(instance.readFile(info.id, '/workspace/x', { maxBytes: 1024 })).rejects.toSatisfy(
        SandboxNotFoundError.isInstance,
      );
      await expect(instance.destroy(info.id)).resolves.toBeUndefined();
    });

    it('an image without /bin/sh: exec fails with a ProviderError saying what the image needs, not exit 127', async () => {
      const rootfs = execFileSync('mktemp', ['-d'], { encoding: 'utf8' }).trim();
      execFileSync('sh', [
        '-c',
        `docker image inspect statebox/nosh:test >/dev/null 2>&1 || { mkdir -p ${rootfs}/bin ${rootfs}/workspace && cp /bin/busybox ${rootfs}/bin/sleep && tar -C ${rootfs} -c . | docker import - statebox/nosh:test >/dev/null; }; rm -rf ${rootfs}`,
      ]);
      const instance = provider({ image: 'statebox/nosh:test' });
      const info = await instance.create({});
      created.push(info.id);
      const error = await instance
        .exec(info.id, { command: ['/bin/sleep', '0'], cwd: '/workspace', maxOutputBytes: 1024 })
        .catch((caught: unknown) => caught);
      expect(ProviderError.isInstance(error), String(error)).toBe(true);
      expect((error as Error).message).toContain(info.id);
      expect((error as Error).message).toMatch(/needs? .*\/bin\/sh|image that has/);
    });

    it('an id it could never have made is not found, not a daemon error', async () => {
      await expect(provider().get('../../etc')).rejects.toSatisfy(SandboxNotFoundError.isInstance);
    });

    it('a sandbox is a container with an init and labels, and /workspace is an overlay volume on host layers', async () => {
      const instance = provider();
      const info = await instance.create({ labels: { team: 'a b' } });
      created.push(info.id);
      const inspect = JSON.parse(
        execFileSync('docker', ['inspect', `statebox-${info.id}`], { encoding: 'utf8' }),
      )[0];
      expect(inspect.HostConfig.Init).toBe(true);
      expect(inspect.Config.Labels['statebox.id']).toBe(info.id);
      expect(inspect.Config.Labels['statebox.label.team']).toBe('a b');
      const mount = inspect.Mounts.find(
        (entry: { Destination: string }) => entry.Destination === '/workspace',
      );
      const volume = JSON.parse(
        execFileSync('docker', ['volume', 'inspect', mount.Name], { encoding: 'utf8' }),
      )[0];
      expect(volume.Options.type).toBe('overlay');
      expect(volume.Options.o).toMatch(/lowerdir=.*upperdir=.*workdir=/);
      expect(await run(instance, info.id, 'ps -o pid,args | sed -n 2p')).toMatch(/docker-init/);
    });

    it('fork copies nothing: the source upper becomes a shared, read-only lower of parent and child', async () => {
      const instance = provider();
      const source = await instance.create({});
      created.push(source.id);
      await run(instance, source.id, 'head -c 1000000 /dev/urandom > blob && sync');
      const child = await instance.fork(source.id);
      created.push(child.id);
      const layersOf = (id: string) => {
        const container = JSON.parse(
          execFileSync('docker', ['inspect', `statebox-${id}`], { encoding: 'utf8' }),
        )[0];
        const name = container.Mounts.find(
          (entry: { Destination: string }) => entry.Destination === '/workspace',
        ).Name;
        const volume = JSON.parse(
          execFileSync('docker', ['volume', 'inspect', name], { encoding: 'utf8' }),
        )[0];
        return (volume.Labels['statebox.layers'] as string).split(',');
      };
      const [parentUpper, ...parentLowers] = layersOf(source.id);
      const [childUpper, ...childLowers] = layersOf(child.id);
      expect(parentUpper).not.toBe(childUpper);
      expect(parentLowers).toEqual(childLowers);
      // The sealed layer holds the blob once; the new uppers are empty.
      expect(readdirSync(`${DEFAULT_STATE_DIR}/l/${parentLowers[0]}`)).toContain('blob');
      expect(readdirSync(`${DEFAULT_STATE_DIR}/l/${parentUpper}`)).toEqual([]);
      expect(await run(instance, child.id, 'wc -c < blob')).toBe('1000000\n');
    });

    it('flattens the layer stack past maxLayers, keeping every file, whiteout and mode, and leaks no layer', async () => {
      const stateDir = '/var/lib/statebox/docker-flatten-test';
      const instance = provider({ maxLayers: 3, stateDir });
      const ids: string[] = [];
      const source = await instance.create({});
      ids.push(source.id);
      try {
        await run(instance, source.id, 'echo 0 > gen0 && echo gone > doomed && chmod 640 gen0');
        for (let generation = 1; generation <= 4; generation++) {
          ids.push((await instance.fork(source.id)).id);
          await run(instance, source.id, `echo ${generation} > gen${generation}; rm -f doomed`);
        }
        const child = await instance.fork(source.id);
        ids.push(child.id);
        expect(await run(instance, child.id, 'cat gen0 gen1 gen2 gen3 gen4; ls doomed 2>&1 || true')).toMatch(
          /^0\n1\n2\n3\n4\n.*No such file/s,
        );
        expect(await run(instance, child.id, 'stat -c %a gen0')).toBe('640\n');
      } finally {
        for (const id of ids) await instance.destroy(id);
      }
      await instance.close();
      expect(readdirSync(`${stateDir}/l`)).toEqual(['empty']);
      expect(readdirSync(`${stateDir}/w`)).toEqual([]);
    });

    it('squashes the root filesystem to one layer before the image chain gets too deep', async () => {
      const instance = provider({ maxImageDepth: 2 });
      const source = await instance.create({});
      created.push(source.id);
      await run(instance, source.id, 'echo rootfs > /etc/marker && rm /bin/vi');
      const child = await instance.fork(source.id);
      created.push(child.id);
      expect(await run(instance, child.id, 'cat /etc/marker; test -e /bin/vi || echo vi-gone')).toBe(
        'rootfs\nvi-gone\n',
      );
      const image = execFileSync('docker', ['inspect', '-f', '{{.Image}}', `statebox-${child.id}`], {
        encoding: 'utf8',
      });
      const layers = execFileSync(
        'docker',
        ['image', 'inspect', '-f', '{{len .RootFS.Layers}}', image.trim()],
        {
          encoding: 'utf8',
        },
      );
      expect(layers.trim()).toBe('1');
    });

    it('a failed fork leaves the source running with its files and nothing behind', async () => {
      // A layer directory that cannot be written makes the fork fail after the source was frozen.
      const stateDir = '/var/lib/statebox/docker-failed-fork-test';
      const instance = provider({ stateDir });
      const source = await instance.create({});
      try {
        await run(instance, source.id, 'echo kept > file');
        execFileSync('chattr', ['+i', `${stateDir}/l`]);
        try {
          await expect(instance.fork(source.id)).rejects.toSatisfy(ProviderError.isInstance);
        } finally {
          execFileSync('chattr', ['-i', `${stateDir}/l`]);
        }
        expect((await instance.get(source.id)).status).toBe('running');
        expect(await run(instance, source.id, 'cat file')).toBe('kept\n');
        const children = execFileSync(
          'docker',
          ['ps', '-aq', '--filter', `label=statebox.parent=${source.id}`],
          {
            encoding: 'utf8',
          },
        );
        expect(children).toBe('');
      } finally {
        await instance.destroy(source.id);
      }
    });

    it('suspend stops the container (no CPU, no memory); resume brings every file back; a fresh process sees it', async () => {
      const instance = provider();
      const info = await instance.create({});
      created.push(info.id);
      await instance.writeFile(
        info.id,
        '/workspace/tool.sh',
        new TextEncoder().encode('#!/bin/sh\necho ok\n'),
        {
          mode: 0o755,
        },
      );
      await run(instance, info.id, 'ln -s tool.sh link && echo root > /etc/marker');
      await instance.suspend(info.id);
      const state = execFileSync('docker', ['inspect', '-f', '{{.State.Status}}', `statebox-${info.id}`], {
        encoding: 'utf8',
      });
      expect(state.trim()).toBe('exited');
      const other = provider();
      expect((await other.get(info.id)).status).toBe('suspended');
      await expect(
        other.exec(info.id, { command: 'true', cwd: '/workspace', maxOutputBytes: 100 }),
      ).rejects.toSatisfy(InvalidStateError.isInstance);
      await other.resume(info.id);
      expect(await run(other, info.id, './link; stat -c %a tool.sh; cat /etc/marker')).toBe(
        'ok\n755\nroot\n',
      );
    });

    it("suspend: 'pause' keeps processes and declares suspend: 'memory'", async () => {
      const instance = provider({ suspend: 'pause' });
      expect(instance.capabilities.suspend).toBe('memory');
      const info = await instance.create({});
      created.push(info.id);
      await run(instance, info.id, 'sleep 1000 >/dev/null 2>&1 & echo $! > pid');
      await instance.suspend(info.id);
      expect((await instance.get(info.id)).status).toBe('suspended');
      await instance.resume(info.id);
      expect(await run(instance, info.id, 'kill -0 $(cat pid) && echo alive')).toBe('alive\n');
    });

    it('reads a symlink through to its target, and reports a missing file as FileNotFoundError', async () => {
      const instance = provider();
      const info = await instance.create({});
      created.push(info.id);
      await run(
        instance,
        info.id,
        'mkdir -p d && echo target > d/t && ln -s d/t l && ln -s /workspace/l abs',
      );
      expect(decoder.decode(await instance.readFile(info.id, '/workspace/abs', { maxBytes: 1024 }))).toBe(
        'target\n',
      );
      await expect(instance.readFile(info.id, '/workspace/missing', { maxBytes: 1024 })).rejects.toSatisfy(
        FileNotFoundError.isInstance,
      );
    });

    it('destroy removes containers, volumes and the layers no other sandbox uses', async () => {
      const instance = provider();
      const source = await instance.create({});
      await run(instance, source.id, 'echo a > a');
      const child = await instance.fork(source.id);
      const layers = (id: string) =>
        execFileSync('docker', ['volume', 'ls', '-q', '--filter', `label=statebox.id=${id}`], {
          encoding: 'utf8',
        })
          .trim()
          .split('\n')
          .filter(Boolean)
          .flatMap((name) =>
            JSON.parse(execFileSync('docker', ['volume', 'inspect', name], { encoding: 'utf8' }))[0].Labels[
              'statebox.layers'
            ].split(','),
          );
      const sourceLayers = layers(source.id);
      const childLayers = layers(child.id);
      const shared = sourceLayers.filter((layer: string) => childLayers.includes(layer) && layer !== 'empty');
      expect(shared.length).toBeGreaterThan(0);
      await instance.destroy(source.id);
      // The sealed layer is still the child's lower.
      for (const layer of shared) expect(existsSync(`${DEFAULT_STATE_DIR}/l/${layer}`)).toBe(true);
      expect(await run(instance, child.id, 'cat a')).toBe('a\n');
      await instance.destroy(child.id);
      for (const layer of [...sourceLayers, ...childLayers].filter((entry: string) => entry !== 'empty')) {
        expect(existsSync(`${DEFAULT_STATE_DIR}/l/${layer}`)).toBe(false);
      }
      expect(
        execFileSync('docker', ['ps', '-aq', '--filter', `label=statebox.id=${source.id}`], {
          encoding: 'utf8',
        }),
      ).toBe('');
    });
  },
);

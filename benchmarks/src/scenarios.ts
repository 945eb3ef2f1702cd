import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { join } from 'node:path';
import type { Sandbox, SandboxProvider } from '@statebox/core';
import { local } from '@statebox/local';
import { localSkipReason } from '@statebox/local/testing';
import { run, runChecked } from './process.ts';
import { time } from './stats.ts';
import { generateWorkspace, WORKSPACE, type WorkspacePlan, type WorkspaceTarget } from './workspace.ts';

/**
 * The provider table. A scenario says how to build its provider (or why it cannot run here), which
 * naive baselines stand beside each statebox figure, and which targets it must meet. Adding a provider
 * is one entry: the harness itself knows no provider by name.
 */

export type FigureId =
  | 'create'
  | 'exec_p50'
  | 'exec_p99'
  | 'write_1mib'
  | 'read_1mib'
  | 'write_64mib'
  | 'read_64mib'
  | 'suspend'
  | 'resume'
  | 'fork'
  | 'fork_x5'
  | 'destroy';

export type Target = {
  figure: FigureId;
  /** The statebox figure must be at most this many ms. */
  maxMs?: number;
  /** The baseline figure divided by the statebox figure must be at least this. */
  minSpeedup?: number;
};

export type Baseline = {
  /** Short name for the table. */
  name: string;
  /** Exactly what is timed. */
  description: string;
  /** One timed repetition. `input` is the payload for write and read. */
  measure(input?: Uint8Array): Promise<number>;
};

export type Baselines = Record<
  'create' | 'exec' | 'write' | 'read' | 'suspend' | 'resume' | 'fork' | 'destroy',
  Baseline
>;

export type BaselineContext = {
  /** The main sandbox, holding the generated workspace. */
  sandbox: Sandbox;
  plan: WorkspacePlan;
  /** A host temp dir the baselines may use. */
  hostDir: string;
  runId: string;
  progress(message: string): void;
};

export type OpenedScenario = {
  provider: SandboxProvider;
  /** Built once the main sandbox holds the workspace (a baseline may need its own copy of it). */
  baselines(context: BaselineContext): Promise<Baselines>;
  /** Removes whatever the baselines created; runs even when the benchmark failed. */
  close(): Promise<void>;
};

export type OpenContext = { home: string; runId: string; image: string | undefined };

export type Scenario = {
  provider: string;
  targets: Target[];
  open(context: OpenContext): Promise<OpenedScenario | { skip: string }>;
};

async function sandboxCommand(sandbox: Sandbox, script: string): Promise<void> {
  const result = await sandbox.exec(['/bin/sh', '-c', script]);
  if (result.exitCode !== 0) {
    throw new Error(
      `Baseline command in sandbox ${sandbox.id} exited ${result.exitCode}: ${script}\n${result.stderr.trim()}`,
    );
  }
}

/**
 * What statebox replaces, run inside the main sandbox so both sides pay the same filesystem and the
 * same exec overhead (a few ms, against seconds): snapshot by archive, restore by extraction, fork by copy.
 * Scratch copies go to the sandbox's /tmp and are removed (untimed) before the next repetition.
 */
function inSandboxBaselines(sandbox: Sandbox): Pick<Baselines, 'suspend' | 'resume' | 'fork' | 'destroy'> {
  let hasArchive = false;
  let hasCopy = false;
  const archive = `tar -cf /tmp/naive.tar -C ${WORKSPACE} .`;
  return {
    suspend: {
      name: 'tar -cf',
      description: `in the sandbox: \`${archive}\` (archive the workspace, no compression, no fsync)`,
      async measure() {
        await sandboxCommand(sandbox, 'rm -f /tmp/naive.tar');
        const ms = await time(() => sandboxCommand(sandbox, archive));
        hasArchive = true;
        return ms;
      },
    },
    resume: {
      name: 'tar -xf',
      description:
        'in the sandbox: `tar -xf /tmp/naive.tar -C /tmp/naive-restore` (restore the archive; removed after)',
      async measure() {
        if (!hasArchive) await sandboxCommand(sandbox, archive);
        hasArchive = true;
        await sandboxCommand(sandbox, 'rm -rf /tmp/naive-restore && mkdir /tmp/naive-restore');
        const ms = await time(() => sandboxCommand(sandbox, 'tar -xf /tmp/naive.tar -C /tmp/naive-restore'));
        await sandboxCommand(sandbox, 'rm -rf /tmp/naive-restore /tmp/naive.tar');
        hasArchive = false;
        return ms;
      },
    },
    fork: {
      name: 'cp -a',
      description: `in the sandbox: \`cp -a ${WORKSPACE} /tmp/naive-fork\` (a full copy as the fork)`,
      async measure() {
        await sandboxCommand(sandbox, 'rm -rf /tmp/naive-fork');
        const ms = await time(() => sandboxCommand(sandbox, `cp -a ${WORKSPACE} /tmp/naive-fork`));
        hasCopy = true;
        return ms;
      },
    },
    destroy: {
      name: 'rm -rf copy',
      description: 'in the sandbox: `rm -rf /tmp/naive-fork` (deleting the naive fork)',
      async measure() {
        if (!hasCopy) await sandboxCommand(sandbox, `cp -a ${WORKSPACE} /tmp/naive-fork`);
        hasCopy = false;
        return time(() => sandboxCommand(sandbox, 'rm -rf /tmp/naive-fork'));
      },
    },
  };
}

async function hostSpawn(file: string, args: string[]): Promise<number> {
  return time(
    () =>
      new Promise<void>((resolve, reject) => {
        const child = spawn(file, args, { stdio: 'ignore' });
        child.on('error', reject);
        child.on('close', (code) =>
          code === 0 ? resolve() : reject(new Error(`${file} ${args.join(' ')} exited ${code}`)),
        );
      }),
  );
}

const localScenario: Scenario = {
  provider: 'local',
  targets: [
    { figure: 'exec_p50', maxMs: 10 },
    { figure: 'suspend', maxMs: 100 },
    { figure: 'resume', maxMs: 50 },
    { figure: 'fork', maxMs: 50 },
  ],
  async open({ home }) {
    const skip = localSkipReason();
    if (skip) return { skip };
    const provider = local({ home });
    return {
      provider,
      async baselines({ sandbox, hostDir }) {
        const ioFile = join(hostDir, 'io.bin');
        const rootless = process.geteuid?.() !== 0;
        const unshare = [
          ...(rootless ? ['--user', '--map-root-user'] : []),
          '--mount',
          '--pid',
          '--fork',
          '--net',
          '--uts',
          '--ipc',
          'true',
        ];
        return {
          create: {
            name: 'bare unshare',
            description: `on the host: \`unshare ${unshare.join(' ')}\` (the same namespaces with no filesystem set-up)`,
            measure: () => hostSpawn('unshare', unshare),
          },
          exec: {
            name: 'host sh -c true',
            description: "on the host: Node spawn('sh', ['-c', 'true']) to exit (no sandbox)",
            measure: () => hostSpawn('sh', ['-c', 'true']),
          },
          write: {
            name: 'host fs.writeFile',
            description:
              'on the host: fs.writeFile of the same bytes to a temp dir on the same disk (no sandbox)',
            measure: (input) => time(() => writeFile(ioFile, input!)),
          },
          read: {
            name: 'host fs.readFile',
            description: 'on the host: fs.readFile of that file (page cache, no sandbox)',
            async measure(input) {
              let length = -1;
              const ms = await time(async () => {
                length = (await readFile(ioFile)).length;
              });
              if (length !== input!.length)
                throw new Error(`host read baseline read ${length} bytes, expected ${input!.length}`);
              return ms;
            },
          },
          ...inSandboxBaselines(sandbox),
        };
      },
      async close() {},
    };
  },
};

/** Answers whether a Docker daemon is reachable, without the CLI: GET /_ping on DOCKER_HOST or the socket. */
export function pingDocker(host: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const target = host.startsWith('unix://')
      ? { socketPath: host.slice('unix://'.length) }
      : (() => {
          const url = new URL(host.replace(/^tcp:/, 'http:'));
          return { host: url.hostname, port: Number(url.port || 2375) };
        })();
    const request = http.get({ ...target, path: '/_ping', timeout: 3000 }, (response) => {
      response.resume();
      resolve(response.statusCode === 200 ? undefined : `GET /_ping answered ${response.statusCode}`);
    });
    request.on('timeout', () => request.destroy(new Error('no answer within 3 s')));
    request.on('error', (error) => resolve(error.message));
  });
}

const dockerScenario: Scenario = {
  provider: 'docker',
  targets: [{ figure: 'fork', maxMs: 300, minSpeedup: 10 }],
  async open({ home, runId, image: requestedImage }) {
    type DockerModule = { docker?: (options: Record<string, unknown>) => SandboxProvider };
    let adapter: DockerModule;
    try {
      adapter = (await import('@statebox/docker' as string)) as DockerModule;
    } catch (error) {
      return {
        skip:
          `@statebox/docker is not installed or not built (${(error as Error).message.split('\n')[0]}). ` +
          'Build it with `pnpm build`, then rerun with --provider docker.',
      };
    }
    if (typeof adapter.docker !== 'function')
      return { skip: '@statebox/docker does not export docker(options) yet.' };
    const host = process.env.DOCKER_HOST?.trim() || 'unix:///var/run/docker.sock';
    const unreachable = await pingDocker(host);
    if (unreachable)
      return {
        skip: `no Docker daemon answered at ${host} (${unreachable}): start dockerd or set DOCKER_HOST.`,
      };
    const cli = await run('docker', ['version', '--format', '{{.Server.Version}}']).catch((error: Error) => ({
      exitCode: 127,
      stderr: error.message,
      stdout: Buffer.alloc(0),
    }));
    if (cli.exitCode !== 0)
      return { skip: `the docker CLI, which the baselines time, does not work: ${cli.stderr.trim()}` };
    const image = requestedImage ?? (process.env.STATEBOX_DOCKER_IMAGE?.trim() || 'statebox/debian:bookworm');
    const provider = adapter.docker({ stateDir: join(home, 'docker'), image });
    const label = `statebox-bench=${runId}`;
    const raw = `statebox-bench-raw-${runId}`;
    const images: string[] = [];
    const startContainer = async (from: string, name?: string) =>
      (
        await runChecked('docker', [
          'run',
          '-d',
          '--init',
          '--label',
          label,
          ...(name ? ['--name', name] : []),
          from,
          'sleep',
          'infinity',
        ])
      ).stdout
        .toString()
        .trim();
    return {
      provider,
      async baselines({ sandbox, plan, progress }) {
        // The commit-based fork needs the workspace in a container's own layer: statebox/docker keeps
        // it in a volume, which `docker commit` skips, so its container would commit nearly nothing.
        progress(
          `loading the same workspace into a plain container ${raw} (${image}) for the docker baselines`,
        );
        await startContainer(image, raw);
        await runChecked('docker', ['exec', raw, 'mkdir', '-p', WORKSPACE]);
        const target: WorkspaceTarget = {
          async extract(archive) {
            await runChecked('docker', ['exec', '-i', raw, 'tar', '-x', '-f', '-', '-C', WORKSPACE], {
              stdin: archive,
            });
          },
          async writeRandom(path, bytes) {
            await runChecked('docker', [
              'exec',
              raw,
              'sh',
              '-c',
              `head -c ${bytes} /dev/urandom > ${WORKSPACE}/${path}`,
            ]);
          },
        };
        const loaded = await generateWorkspace(plan, target);
        progress(`  plain container loaded in ${(loaded.generationMs / 1000).toFixed(1)} s`);
        let forks = 0;
        return {
          create: {
            name: 'docker run -d',
            description: `docker CLI: \`docker run -d --init ${image} sleep infinity\` (removed after, untimed)`,
            async measure() {
              let id = '';
              const ms = await time(async () => {
                id = await startContainer(image);
              });
              await run('docker', ['rm', '-f', id]);
              return ms;
            },
          },
          exec: {
            name: 'docker exec CLI',
            description: `docker CLI: \`docker exec ${raw} true\``,
            measure: () => hostSpawn('docker', ['exec', raw, 'true']),
          },
          write: {
            name: 'docker exec -i cat >',
            description:
              "docker CLI: `docker exec -i <plain> sh -c 'cat > /tmp/bench-io'` with the bytes on stdin",
            measure: (input) =>
              time(() =>
                runChecked('docker', ['exec', '-i', raw, 'sh', '-c', 'cat > /tmp/bench-io'], {
                  stdin: input!,
                }),
              ),
          },
          read: {
            name: 'docker exec cat',
            description: 'docker CLI: `docker exec <plain> cat /tmp/bench-io`',
            measure: (input) =>
              time(async () => {
                const result = await runChecked('docker', ['exec', raw, 'cat', '/tmp/bench-io']);
                if (result.stdout.length !== input!.length)
                  throw new Error(`docker read baseline got ${result.stdout.length} bytes`);
              }),
          },
          fork: {
            name: 'docker commit + run',
            description: `docker CLI: \`docker commit ${raw} <tag>\` then \`docker run -d --init <tag> sleep infinity\` (workspace in the container layer)`,
            async measure() {
              const tag = `statebox-bench-fork:${runId}-${forks++}`;
              images.push(tag);
              let id = '';
              const ms = await time(async () => {
                await runChecked('docker', ['commit', raw, tag]);
                id = await startContainer(tag);
              });
              await run('docker', ['rm', '-f', id]);
              return ms;
            },
          },
          ...(({ suspend, resume, destroy }) => ({ suspend, resume, destroy }))(inSandboxBaselines(sandbox)),
        };
      },
      async close() {
        const listed = await run('docker', ['ps', '-aq', '--filter', `label=${label}`]);
        const ids = listed.stdout.toString().split('\n').filter(Boolean);
        if (ids.length > 0) await run('docker', ['rm', '-f', ...ids]);
        if (images.length > 0) await run('docker', ['rmi', '-f', ...images]);
      },
    };
  },
};

export const scenarios: Record<string, Scenario> = {
  local: localScenario,
  docker: dockerScenario,
};

import { randomBytes } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { type AdapterModule, createStatebox, type Sandbox } from '@statebox/core';
import { createToolset } from '@statebox/runner';
import type { SandboxHandle, SandboxProvider as TanstackProvider } from '@tanstack/ai-sandbox';
import { localProcessSandbox } from '@tanstack/ai-sandbox-local-process';
import type { Box, Driver, DriverSpec, ExecOut, Shell } from './types.ts';

export const LABEL = 'statebox-compare';
export const TANSTACK_VERSION = '@tanstack/ai-sandbox 0.2.4 + ai-sandbox-local-process 0.2.0';

/** Builds the driver a spec describes; the morning process calls this with the evening's spec. */
export async function openDriver(spec: DriverSpec): Promise<Driver> {
  return spec.kind === 'statebox' ? openStatebox(spec) : openTanstack(spec);
}

async function openStatebox(spec: Extract<DriverSpec, { kind: 'statebox' }>): Promise<Driver> {
  // The adapter is loaded by name, as `createProvider` would, but resolved from here: core's own lookup
  // uses require.resolve, which misses packages whose exports have only an "import" condition (docker).
  const { provider: name, ...options } = spec.config;
  const adapter = (await import(`@statebox/${name}`)) as AdapterModule;
  const statebox = createStatebox({
    provider: await adapter.createFromConfig(options, { ...process.env, ...spec.env }),
  });
  const provider = await statebox.provider();
  const boxes = new Map<string, Sandbox>();
  const wrap = (sandbox: Sandbox): Box => {
    const box: Box = {
      id: sandbox.id,
      workdir: sandbox.workdir,
      home: '/root',
      async exec(command, options = {}) {
        const result = await sandbox.exec(command, {
          ...(options.cwd !== undefined && { cwd: options.cwd }),
          ...(options.stdin !== undefined && { stdin: options.stdin }),
          env: { HOME: '/root' },
        });
        return { exitCode: result.exitCode, stdout: result.stdout, stderr: result.stderr };
      },
      writeFile: (path, data, mode) => sandbox.writeFile(path, data, mode === undefined ? {} : { mode }),
      readFile: async (path) => (await sandbox.readFile(path, { maxBytes: 128 * 1024 * 1024 })) as Uint8Array,
    };
    boxes.set(box.id, sandbox);
    return box;
  };
  const sandboxOf = (box: Box): Sandbox => {
    const sandbox = boxes.get(box.id);
    if (!sandbox) throw new Error(`box ${box.id} was not made by the ${spec.name} driver`);
    return sandbox;
  };
  const labels = { [LABEL]: spec.runId };
  const { suspend, fork } = provider.capabilities;
  return {
    name: spec.name,
    library: 'statebox',
    backend: spec.config.provider,
    source: spec.source,
    declared: { suspend: `keeps ${suspend}`, fork: `copies ${fork}` },
    create: async () => wrap(await statebox.create({ labels, ...(spec.image && { image: spec.image }) })),
    attach: async (id) => wrap(await statebox.get(id)),
    suspend:
      suspend === 'none'
        ? { unsupported: `${provider.name} declares suspend: 'none'` }
        : async (box) => {
            await sandboxOf(box).suspend();
          },
    resume:
      suspend === 'none'
        ? { unsupported: `${provider.name} declares suspend: 'none'` }
        : async (box) => {
            await sandboxOf(box).resume();
          },
    fork:
      fork === 'none'
        ? { unsupported: `${provider.name} declares fork: 'none'` }
        : async (box) => wrap(await sandboxOf(box).fork({ labels })),
    async destroy(box) {
      await sandboxOf(box).destroy();
      boxes.delete(box.id);
    },
    shell(box, session): Shell {
      // The runner's bash tool keeps cwd, variables and functions in a state file inside the sandbox.
      const [tool] = createToolset({
        sandbox: async () => sandboxOf(box),
        sessionId: session,
        workdir: box.workdir,
        env: { HOME: '/root' },
      });
      return async (command) => String(await tool!.run({ command } as never));
    },
    async close() {
      const left = await statebox.list({ labels }).catch(() => []);
      for (const sandbox of left) await sandbox.destroy().catch(() => undefined);
    },
  };
}

/**
 * TanStack AI's local-process provider: a host directory per sandbox, commands run on the host
 * through `sh -c` (no isolation), fork = a recursive copy. Its contract has no suspend.
 */
async function openTanstack(spec: Extract<DriverSpec, { kind: 'tanstack-local-process' }>): Promise<Driver> {
  await mkdir(spec.baseDir, { recursive: true });
  const provider: TanstackProvider = localProcessSandbox({ baseDir: spec.baseDir });
  const handles = new Map<string, SandboxHandle>();
  const wrap = (handle: SandboxHandle): Box => {
    const home = join(handle.id, '.home');
    const env = { HOME: home };
    const box: Box = {
      id: handle.id,
      workdir: handle.id,
      home,
      async exec(command, options = {}): Promise<ExecOut> {
        let run = command;
        let stdinFile: string | undefined;
        if (options.stdin) {
          // The contract's exec has no stdin and spawn's stdin takes strings: stage the bytes as a file.
          stdinFile = `.stdin-${randomBytes(6).toString('hex')}`;
          await handle.fs.write(stdinFile, options.stdin);
          run = `{ ${command}\n} < ${join(handle.id, stdinFile)}`;
        }
        try {
          return await handle.process.exec(run, {
            env,
            ...(options.cwd !== undefined && { cwd: options.cwd }),
          });
        } finally {
          if (stdinFile) await handle.fs.remove(stdinFile);
        }
      },
      writeFile: async (path, data, mode) => {
        await handle.fs.write(path, data);
        if (mode !== undefined) {
          const result = await handle.process.exec(
            `chmod ${mode.toString(8)} '${path.replaceAll("'", "'\\''")}'`,
          );
          if (result.exitCode !== 0) throw new Error(`chmod in ${handle.id}: ${result.stderr}`);
        }
      },
      readFile: (path) => handle.fs.readBytes(path),
    };
    handles.set(box.id, handle);
    return box;
  };
  const handleOf = (box: Box): SandboxHandle => {
    const handle = handles.get(box.id);
    if (!handle) throw new Error(`box ${box.id} was not made by the tanstack driver`);
    return handle;
  };
  const caps = provider.capabilities();
  const noSuspend = {
    unsupported:
      '@tanstack/ai-sandbox has no suspend (its resume(id) reattaches to a sandbox that never stopped)',
  };
  return {
    name: spec.name,
    library: TANSTACK_VERSION,
    backend: 'local (host process, no isolation)',
    source: 'real',
    declared: {
      suspend: 'none (no suspend in the contract)',
      fork: caps.fork ? 'copies filesystem (fs.cp of the directory)' : 'none',
    },
    create: async () => wrap(await provider.create({})),
    async attach(id) {
      const handle = await provider.resume({ id });
      if (!handle) throw new Error(`tanstack local-process: sandbox ${id} is gone`);
      return wrap(handle);
    },
    suspend: noSuspend,
    resume: noSuspend,
    fork: caps.fork
      ? async (box) => {
          const forked = handleOf(box).fork;
          if (!forked) throw new Error('tanstack handle has no fork()');
          return wrap(await forked());
        }
      : { unsupported: 'local-process declares fork: false' },
    async destroy(box) {
      await handleOf(box).destroy();
      handles.delete(box.id);
    },
    shell: () => ({
      unsupported:
        'no persistent shell: each process.exec is a new sh -c; env.set() lives in the handle, in memory',
    }),
    async close() {
      for (const handle of handles.values()) await handle.destroy().catch(() => undefined);
      handles.clear();
      await rm(spec.baseDir, { recursive: true, force: true });
    },
  };
}

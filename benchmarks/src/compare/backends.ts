import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { localSkipReason } from '@statebox/local/testing';
import { run } from '../process.ts';
import type { RawSdk } from '../raw-sdk/types.ts';
import type { DriverSpec, Source } from './types.ts';

/**
 * Which backends this run compares. Every candidate ends up either opened (a `DriverSpec`) or listed
 * as not available with the reason: a backend is never dropped silently.
 *
 * The cloud adapters (Tensorlake, Daytona, Cloudflare) join through a hook module each,
 * `hooks/<name>.ts`, written on the adapter's branch: it starts the adapter's loopback emulator (or
 * uses credentials) and may add the raw vendor SDK for the overhead ratio. See benchmarks/README.md.
 */

/** What a cloud backend's hook module (`hooks/<name>.ts`) exports. */
export type BackendHook = {
  open(context: HookContext): Promise<OpenedBackend | { unavailable: string }>;
};

export type HookContext = {
  runId: string;
  /** A scratch directory the hook may use; removed after the run. */
  scratch: string;
  /** True when the user asked for live runs of this backend (`--live <name>`). */
  live: boolean;
  progress(message: string): void;
};

export type OpenedBackend = {
  source: Extract<Source, 'emulator' | 'live'>;
  /** `createProvider` config: `{ provider: 'tensorlake', ...options }` reaching the emulator or the vendor. */
  config: { provider: string } & Record<string, unknown>;
  /** Environment variables the adapter reads (e.g. an emulator's URL or a token), also given to the morning process. */
  env?: Record<string, string>;
  /** Image or template for `create`, if the backend needs one. */
  image?: string;
  /** The same operations through the vendor's own SDK against the same endpoint, measured in the same rounds. */
  raw?: RawSdk;
  /** Stops the emulator; runs after everything else. */
  close(): Promise<void>;
};

export type Candidate = {
  name: string;
  library: string;
  /** A spec, plus what to run at the end; or why this backend is not in the run. */
  outcome: { spec: DriverSpec; raw: RawSdk | null; close(): Promise<void> } | { unavailable: string };
};

export const cloudBackends = ['tensorlake', 'daytona', 'cloudflare'] as const;
export const allBackends = [
  'local',
  'docker',
  ...cloudBackends,
  'tanstack/local-process',
  'computesdk',
] as const;

export type DiscoverOptions = {
  runId: string;
  home: string;
  scratch: string;
  only: string[] | undefined;
  live: string[];
  dockerImage: string;
  progress(message: string): void;
};

export async function discover(options: DiscoverOptions): Promise<Candidate[]> {
  const wanted = (name: string) => !options.only || options.only.includes(name);
  const candidates: Candidate[] = [];
  const add = async (name: string, library: string, open: () => Promise<Candidate['outcome']>) => {
    if (!wanted(name)) return;
    let outcome: Candidate['outcome'];
    try {
      outcome = await open();
    } catch (error) {
      outcome = { unavailable: `opening it failed: ${(error as Error).message.split('\n')[0]}` };
    }
    if ('unavailable' in outcome) options.progress(`${name}: not available: ${outcome.unavailable}`);
    candidates.push({ name, library, outcome });
  };
  const noop = async () => undefined;

  await add('local', 'statebox', async () => {
    const skip = localSkipReason();
    if (skip) return { unavailable: skip };
    return {
      spec: {
        kind: 'statebox',
        name: 'local',
        source: 'real',
        runId: options.runId,
        config: { provider: 'local', home: join(options.home, 'local') },
      },
      raw: null,
      close: noop,
    };
  });
  await add('docker', 'statebox', async () => {
    const loaded = await canImport('@statebox/docker');
    if (loaded) return { unavailable: `@statebox/docker cannot be loaded (${loaded}); run pnpm build` };
    type DockerTesting = { dockerHost(): string; pingDocker(host: string): Promise<string | undefined> };
    const testing = (await import('@statebox/docker/testing' as string)) as DockerTesting;
    const host = testing.dockerHost();
    const unreachable = await testing.pingDocker(host);
    if (unreachable) return { unavailable: `no Docker daemon answered at ${host} (${unreachable})` };
    const image = await run('docker', ['image', 'inspect', options.dockerImage]).catch(() => ({
      exitCode: 1,
    }));
    if (image.exitCode !== 0)
      return { unavailable: `image ${options.dockerImage} is missing (bash .ci/docker.sh builds it)` };
    return {
      spec: {
        kind: 'statebox',
        name: 'docker',
        source: 'real',
        runId: options.runId,
        config: { provider: 'docker', stateDir: join(options.home, 'docker'), image: options.dockerImage },
      },
      raw: null,
      close: noop,
    };
  });
  for (const name of cloudBackends) {
    await add(name, 'statebox', async () => {
      const loaded = await canImport(`@statebox/${name}`);
      if (loaded)
        return {
          unavailable: `@statebox/${name} cannot be loaded (${loaded}); it is built on its own branch and joins once merged and listed in benchmarks/package.json`,
        };
      const hookFile = join(import.meta.dirname, 'hooks', `${name}.ts`);
      if (!existsSync(hookFile))
        return {
          unavailable: `@statebox/${name} loads, but benchmarks/src/compare/hooks/${name}.ts (emulator start, raw SDK) is not written yet`,
        };
      const hook = (await import(pathToFileURL(hookFile).href)) as BackendHook;
      const opened = await hook.open({
        runId: options.runId,
        scratch: join(options.scratch, name),
        live: options.live.includes(name),
        progress: options.progress,
      });
      if ('unavailable' in opened) return opened;
      return {
        spec: {
          kind: 'statebox',
          name,
          source: opened.source,
          runId: options.runId,
          config: opened.config,
          ...(opened.env && { env: opened.env }),
          ...(opened.image && { image: opened.image }),
        },
        raw: opened.raw ?? null,
        close: opened.close,
      };
    });
  }
  await add('tanstack/local-process', '@tanstack/ai-sandbox', async () => {
    const loaded = await canImport('@tanstack/ai-sandbox-local-process');
    if (loaded) return { unavailable: `@tanstack/ai-sandbox-local-process cannot be loaded (${loaded})` };
    return {
      spec: {
        kind: 'tanstack-local-process',
        name: 'tanstack/local-process',
        baseDir: join(options.scratch, 'tanstack'),
        runId: options.runId,
      },
      raw: null,
      close: noop,
    };
  });
  await add('computesdk', 'computesdk 4.1.4', async () => ({
    unavailable:
      'no ComputeSDK provider for Docker or a local process in the registry (@computesdk/docker: 404); its cloud providers need credentials, and computesdk has no suspend or fork (PR #645 open)',
  }));
  return candidates;
}

/** Undefined when the module loads; otherwise the first line of the reason. */
async function canImport(specifier: string): Promise<string | undefined> {
  try {
    await import(specifier);
    return undefined;
  } catch (error) {
    return (error as Error).message.split('\n')[0];
  }
}

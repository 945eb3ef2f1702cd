import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createProvider, isProvider } from '../src/config.js';
import { ConfigError } from '../src/errors.js';
import type { SandboxProvider } from '../src/provider.js';
import { createStatebox } from '../src/statebox.js';

/**
 * A provider as the fixture adapters below build it: enough for `isProvider`, plus what the adapter
 * received, so a test sees which config reached it.
 */
type FixtureProvider = SandboxProvider & {
  received: { options: Record<string, unknown>; env: Record<string, string> };
};

let project: string;

beforeEach(async () => {
  project = await mkdtemp(join(tmpdir(), 'statebox-config-'));
  await writeFile(join(project, 'package.json'), JSON.stringify({ name: 'app', type: 'module' }));
});

afterEach(async () => {
  await rm(project, { recursive: true, force: true });
});

/** Installs a tiny adapter package into the temp project's node_modules, as `pnpm add` would. */
async function installAdapter(packageName: string, body: string): Promise<void> {
  const directory = join(project, 'node_modules', ...packageName.split('/'));
  await mkdir(directory, { recursive: true });
  await writeFile(
    join(directory, 'package.json'),
    JSON.stringify({ name: packageName, type: 'module', main: 'index.js' }),
  );
  await writeFile(join(directory, 'index.js'), body);
}

function fixtureAdapter(name: string): string {
  return `export function createFromConfig(options, env) {
  return {
    specificationVersion: 'statebox-v1',
    name: ${JSON.stringify(name)},
    capabilities: {},
    received: { options, env: { STATEBOX_TEST: env.STATEBOX_TEST } },
  };
}
`;
}

async function load(config?: Parameters<typeof createProvider>[0], env: NodeJS.ProcessEnv = {}) {
  return (await createProvider(config, { cwd: project, env })) as FixtureProvider;
}

async function configError(action: () => Promise<unknown>): Promise<ConfigError> {
  try {
    await action();
  } catch (error) {
    if (ConfigError.isInstance(error)) return error;
    throw error;
  }
  return expect.fail('expected a ConfigError');
}

describe('createProvider', () => {
  it('returns an explicit provider object as is', async () => {
    const provider = {
      specificationVersion: 'statebox-v1',
      name: 'inline',
      capabilities: {},
    } as SandboxProvider;
    expect(isProvider(provider)).toBe(true);
    expect(await createProvider(provider, { cwd: project, env: {} })).toBe(provider);
    expect(await createStatebox({ provider }).provider()).toBe(provider);
  });

  it('builds a provider from an explicit config object, passing its options and env to the adapter', async () => {
    await installAdapter('@statebox/docker', fixtureAdapter('fixture-docker'));
    const provider = await load(
      { provider: 'docker', image: 'debian:bookworm' },
      { STATEBOX_TEST: 'env value' },
    );
    expect(provider.name).toBe('fixture-docker');
    expect(provider.received).toEqual({
      options: { image: 'debian:bookworm' },
      env: { STATEBOX_TEST: 'env value' },
    });
  });

  it('reads statebox.config.json from the cwd, before STATEBOX_PROVIDER', async () => {
    await installAdapter('@statebox/local', fixtureAdapter('fixture-local'));
    await installAdapter('@statebox/docker', fixtureAdapter('fixture-docker'));
    await writeFile(
      join(project, 'statebox.config.json'),
      JSON.stringify({ provider: 'local', home: '/srv/statebox' }),
    );
    const provider = await load(undefined, { STATEBOX_PROVIDER: 'docker' });
    expect(provider.name).toBe('fixture-local');
    expect(provider.received.options).toEqual({ home: '/srv/statebox' });
  });

  it('a forced provider (a CLI --provider) keeps the config file options only when the file names it', async () => {
    await installAdapter('@statebox/local', fixtureAdapter('fixture-local'));
    await installAdapter('@statebox/docker', fixtureAdapter('fixture-docker'));
    await writeFile(
      join(project, 'statebox.config.json'),
      JSON.stringify({ provider: 'docker', image: 'statebox/debian:bookworm' }),
    );
    const forced = (provider: 'local' | 'docker') =>
      createProvider(undefined, {
        cwd: project,
        env: { STATEBOX_TEST: 'env value' },
        providerName: provider,
      }) as Promise<FixtureProvider>;
    const docker = await forced('docker');
    expect(docker.name).toBe('fixture-docker');
    expect(docker.received.options).toEqual({ image: 'statebox/debian:bookworm' });
    const local = await forced('local');
    expect(local.name).toBe('fixture-local');
    expect(local.received).toEqual({ options: {}, env: { STATEBOX_TEST: 'env value' } });
  });

  it('reads a statebox.config.mjs default export, and the file named by STATEBOX_CONFIG', async () => {
    await installAdapter('@statebox/docker', fixtureAdapter('fixture-docker'));
    await writeFile(
      join(project, 'statebox.config.mjs'),
      "export default { provider: 'docker', image: 'alpine' };",
    );
    expect((await load()).received.options).toEqual({ image: 'alpine' });
    await mkdir(join(project, 'config'));
    await writeFile(
      join(project, 'config', 'other.json'),
      JSON.stringify({ provider: 'docker', image: 'busybox' }),
    );
    expect((await load(undefined, { STATEBOX_CONFIG: 'config/other.json' })).received.options).toEqual({
      image: 'busybox',
    });
  });

  it('uses STATEBOX_PROVIDER when there is no config file, and local when nothing is set', async () => {
    await installAdapter('@statebox/local', fixtureAdapter('fixture-local'));
    await installAdapter('@statebox/docker', fixtureAdapter('fixture-docker'));
    expect((await load(undefined, { STATEBOX_PROVIDER: ' docker ' })).name).toBe('fixture-docker');
    expect((await load(undefined, {})).name).toBe('fixture-local');
  });

  it('names the missing adapter package and how to install it', async () => {
    // Every adapter is in this workspace, so a package that exists nowhere stands in for a missing one.
    const packages = { daytona: '@statebox/not-installed-daytona' };
    const error = await configError(() =>
      createProvider(undefined, { cwd: project, env: { STATEBOX_PROVIDER: 'daytona' }, packages }),
    );
    expect(error.option).toBe('@statebox/not-installed-daytona');
    expect(error.message).toContain("Provider 'daytona' needs the package @statebox/not-installed-daytona");
    expect(error.message).toContain('pnpm add @statebox/not-installed-daytona');
  });

  it('loads an adapter package named in `packages` in place of the default one', async () => {
    const provider = await createProvider(
      { provider: 'docker' },
      { cwd: project, env: {}, packages: { docker: '@statebox/local' } },
    );
    expect(provider.name).toBe('local');
  });

  it('rejects an invalid provider name, listing the valid ones', async () => {
    const error = await configError(() => load({ provider: 'kubernetes' } as never));
    expect(error.option).toBe('provider');
    expect(error.message).toContain('kubernetes');
    expect(error.message).toContain('local, docker');
    const fromEnv = await configError(() => load(undefined, { STATEBOX_PROVIDER: 'nope' }));
    expect(fromEnv.option).toBe('provider');
    await writeFile(join(project, 'statebox.config.json'), JSON.stringify({ image: 'no provider key' }));
    expect((await configError(() => load())).option).toBe('provider');
  });

  it('rejects a missing STATEBOX_CONFIG file, an unparsable config and a package that is not an adapter', async () => {
    expect((await configError(() => load(undefined, { STATEBOX_CONFIG: 'missing.json' }))).option).toBe(
      'STATEBOX_CONFIG',
    );
    await writeFile(join(project, 'statebox.config.json'), '{ not json');
    const unparsable = await configError(() => load());
    expect(unparsable.message).toContain('statebox.config.json');
    await rm(join(project, 'statebox.config.json'));
    await installAdapter('@statebox/cloudflare', 'export const something = 1;\n');
    const notAdapter = await configError(() => load({ provider: 'cloudflare' }));
    expect(notAdapter.option).toBe('@statebox/cloudflare');
    expect(notAdapter.message).toContain('createFromConfig');
  });

  it('createStatebox creates the provider lazily and retries after a failure', async () => {
    // A package name that nothing in the workspace resolves, installed into the project afterwards.
    const statebox = createStatebox({
      provider: { provider: 'docker' },
      cwd: project,
      env: {},
      packages: { docker: '@statebox/fixture-docker' },
    });
    await configError(() => statebox.provider());
    await installAdapter('@statebox/fixture-docker', fixtureAdapter('fixture-docker'));
    expect((await statebox.provider()).name).toBe('fixture-docker');
  });
});

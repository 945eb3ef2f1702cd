import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { z } from 'zod';
import { ConfigError } from './errors.js';
import type { SandboxProvider } from './provider.js';

/** The backends statebox knows by name, and the package each lives in. */
export const providerPackages = {
  local: '@statebox/local',
  docker: '@statebox/docker',
  daytona: '@statebox/daytona',
  cloudflare: '@statebox/cloudflare',
  tensorlake: '@statebox/tensorlake',
} as const;

export type ProviderName = keyof typeof providerPackages;

/**
 * A provider chosen by config: `{ provider: 'docker', image: 'debian:bookworm' }`. Every key besides
 * `provider` is that adapter's own option, validated by the adapter.
 */
export type ProviderConfig = { provider: ProviderName } & Record<string, unknown>;

/**
 * What an adapter package exports so that `createProvider` can load it lazily by name. Options missing
 * from `options` are read from `env` (each adapter documents its variables, e.g. `DOCKER_HOST`).
 */
export type AdapterModule = {
  createFromConfig(
    options: Record<string, unknown>,
    env: NodeJS.ProcessEnv,
  ): SandboxProvider | Promise<SandboxProvider>;
};

const configSchema = z
  .object({
    provider: z.enum(Object.keys(providerPackages) as [ProviderName, ...ProviderName[]], {
      error: (issue) =>
        `must be one of ${Object.keys(providerPackages).join(', ')} (got ${JSON.stringify(issue.input)})`,
    }),
  })
  .passthrough();

export const CONFIG_FILE_NAMES = [
  'statebox.config.ts',
  'statebox.config.mjs',
  'statebox.config.js',
  'statebox.config.json',
] as const;

export type CreateProviderOptions = {
  /** Where to look for `statebox.config.*`. Default: the current directory. */
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /**
   * The package to load for a provider name, where it is not the default (`providerPackages`): a fork of
   * an adapter, or a build of your own, e.g. `{ docker: '@acme/statebox-docker' }`.
   */
  packages?: Partial<Record<ProviderName, string>>;
  /**
   * Use this provider whatever the config names (a CLI's `--provider`). Its options still come from the
   * config file when the file configures the same provider, else from its environment variables.
   */
  providerName?: ProviderName;
};

/**
 * Builds a provider from config. The first of these that is present wins:
 * 1. `config`, when given (an object, or a provider instance that is returned as is);
 * 2. the file named by `STATEBOX_CONFIG`, or `statebox.config.{ts,mjs,js,json}` in `cwd`;
 * 3. `STATEBOX_PROVIDER` plus that provider's environment variables;
 * 4. the embedded `local` provider.
 *
 * The adapter package is imported only then, so an app that uses Docker never loads the others.
 */
export async function createProvider(
  config?: ProviderConfig | SandboxProvider,
  options: CreateProviderOptions = {},
): Promise<SandboxProvider> {
  if (config && isProvider(config)) return config;
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  let raw = config ?? (await loadConfigFile(cwd, env)) ?? configFromEnv(env);
  if (
    options.providerName !== undefined &&
    (raw as { provider?: unknown }).provider !== options.providerName
  ) {
    raw = { provider: options.providerName };
  }
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new ConfigError(
      issue.path.join('.') || 'provider',
      `Invalid statebox config: '${issue.path.join('.') || 'provider'}' ${issue.message}. ` +
        `Set { provider: 'local' } (the default) or one of: ${Object.keys(providerPackages).join(', ')}.`,
    );
  }
  const { provider, ...providerOptions } = parsed.data;
  const adapter = await loadAdapter(provider, cwd, options.packages?.[provider]);
  return adapter.createFromConfig(providerOptions, env);
}

export function isProvider(value: unknown): value is SandboxProvider {
  return (
    typeof value === 'object' &&
    value !== null &&
    (value as { specificationVersion?: unknown }).specificationVersion === 'statebox-v1'
  );
}

function configFromEnv(env: NodeJS.ProcessEnv): Record<string, unknown> {
  return { provider: env.STATEBOX_PROVIDER?.trim() || 'local' };
}

async function loadConfigFile(
  cwd: string,
  env: NodeJS.ProcessEnv,
): Promise<Record<string, unknown> | undefined> {
  let file: string | undefined;
  if (env.STATEBOX_CONFIG) {
    file = resolve(cwd, env.STATEBOX_CONFIG);
    if (!existsSync(file)) {
      throw new ConfigError('STATEBOX_CONFIG', `STATEBOX_CONFIG names ${file}, which does not exist.`);
    }
  } else {
    file = CONFIG_FILE_NAMES.map((name) => join(cwd, name)).find((candidate) => existsSync(candidate));
  }
  if (!file) return undefined;
  try {
    if (file.endsWith('.json')) return JSON.parse(await readFile(file, 'utf8'));
    const module = (await import(pathToFileURL(file).href)) as { default?: unknown };
    const value = module.default ?? module;
    if (typeof value !== 'object' || value === null) {
      throw new ConfigError('default', `${file} must export a config object as its default export.`);
    }
    return value as Record<string, unknown>;
  } catch (error) {
    if (ConfigError.isInstance(error)) throw error;
    throw new ConfigError(file, `Could not load statebox config ${file}: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

async function loadAdapter(
  provider: ProviderName,
  cwd: string,
  packageOverride: string | undefined,
): Promise<AdapterModule> {
  const packageName = packageOverride ?? providerPackages[provider];
  // Resolve from the user's project and entry script first: with pnpm's strict layout core cannot see
  // its siblings, and the app that depends on the adapter may not be the current directory.
  let specifier: string = packageName;
  const bases = [
    join(cwd, 'package.json'),
    ...(process.argv[1] ? [resolve(process.argv[1])] : []),
    import.meta.url,
  ];
  for (const base of bases) {
    try {
      specifier = pathToFileURL(createRequire(base).resolve(packageName)).href;
      break;
    } catch {
      // Try the next base.
    }
  }
  let module: Partial<AdapterModule>;
  try {
    module = (await import(specifier)) as Partial<AdapterModule>;
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') {
      throw new ConfigError(
        packageName,
        `Provider '${provider}' needs the package ${packageName}, which is not installed. ` +
          `Run \`pnpm add ${packageName}\` (or npm install ${packageName}).`,
        { cause: error },
      );
    }
    throw error;
  }
  if (typeof module.createFromConfig !== 'function') {
    throw new ConfigError(
      packageName,
      `${packageName} does not export createFromConfig(); it is not a statebox-v1 adapter, or its version is too old.`,
    );
  }
  return module as AdapterModule;
}

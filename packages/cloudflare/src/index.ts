import { ConfigError, type SandboxProvider } from '@statebox/core';
import { type CloudflareProviderOptions, resolveOptions } from './options.js';
import { CloudflareProvider } from './provider.js';

export { capabilities } from './capabilities.js';
export type { CloudflareProviderOptions } from './options.js';
export { CloudflareProvider } from './provider.js';

/**
 * A statebox provider that drives a deployed statebox Worker (`@statebox/cloudflare/worker`).
 *
 * ```ts
 * import { createStatebox } from '@statebox/core';
 * import { cloudflare } from '@statebox/cloudflare';
 * const statebox = createStatebox({ provider: cloudflare({ url: 'https://statebox.example.workers.dev', token }) });
 * ```
 */
export function cloudflare(options: CloudflareProviderOptions = {}): CloudflareProvider {
  const resolved = resolveOptions(options as Record<string, unknown>, process.env);
  if (!resolved.url || !resolved.token) {
    throw new ConfigError(
      resolved.url ? 'token' : 'url',
      `The cloudflare provider needs the Worker's ${resolved.url ? 'token' : 'URL'}: set STATEBOX_CLOUDFLARE_${resolved.url ? 'TOKEN' : 'URL'} ` +
        '(or the option). To run against a local Worker in workerd and Docker, use createFromConfig or startLocalWorker from @statebox/cloudflare/testing.',
    );
  }
  return new CloudflareProvider({ ...resolved, url: resolved.url, token: resolved.token });
}

/**
 * The `AdapterModule` entry point: `{ provider: 'cloudflare', url, token }`, with the rest from `env`.
 * Without a URL (and unless `local: 'never'`), it starts the Worker in local workerd with containers in
 * local Docker, and says so on stderr.
 */
export async function createFromConfig(
  options: Record<string, unknown>,
  env: NodeJS.ProcessEnv,
): Promise<SandboxProvider> {
  const resolved = resolveOptions(options, env);
  if (resolved.url) {
    if (!resolved.token) {
      throw new ConfigError(
        'token',
        'STATEBOX_CLOUDFLARE_URL is set but STATEBOX_CLOUDFLARE_TOKEN is not: set it to the Worker secret STATEBOX_TOKEN.',
      );
    }
    return new CloudflareProvider({ ...resolved, url: resolved.url, token: resolved.token });
  }
  if (resolved.local === 'never') {
    throw new ConfigError(
      'url',
      'Set STATEBOX_CLOUDFLARE_URL and STATEBOX_CLOUDFLARE_TOKEN to a deployed statebox Worker (see the @statebox/cloudflare README).',
    );
  }
  const { localWorkerSkipReason, startLocalWorker } = await import('./local/start.js');
  const reason = await localWorkerSkipReason();
  if (reason) {
    throw new ConfigError(
      'url',
      `STATEBOX_CLOUDFLARE_URL is not set and the local Worker cannot start: ${reason}. Set STATEBOX_CLOUDFLARE_URL and STATEBOX_CLOUDFLARE_TOKEN to a deployed Worker instead.`,
    );
  }
  const worker = await startLocalWorker();
  // Processes this one starts (the demo's and the runner's workers) inherit the variables and so reach
  // the same Worker, its registry and its backups, instead of each starting a Worker of their own.
  env.STATEBOX_CLOUDFLARE_URL = worker.url;
  env.STATEBOX_CLOUDFLARE_TOKEN = worker.token;
  process.stderr.write(
    `statebox: STATEBOX_CLOUDFLARE_URL is not set, so a local statebox Worker runs at ${worker.url} ` +
      '(wrangler 4.164.0 / workerd, @cloudflare/sandbox 0.12.10, containers in local Docker).\n',
  );
  return new CloudflareProvider({ ...resolved, url: worker.url, token: worker.token });
}

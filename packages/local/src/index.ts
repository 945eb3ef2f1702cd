import type { SandboxProvider } from '@statebox/core';
import { type LocalOptions, resolveLocalOptions } from './options.js';
import { LocalProvider } from './provider.js';

export { localCapabilities } from './capabilities.js';
export { defaultHome, type LocalLimits, type LocalOptions } from './options.js';
export { LocalProvider } from './provider.js';

/**
 * The embedded provider: sandboxes isolated by Linux namespaces, with overlayfs layers that make
 * suspend, resume and fork O(1) in the workspace size. Needs Linux and util-linux; no daemon. What the
 * options leave out comes from the environment (`STATEBOX_HOME`, `STATEBOX_LOCAL_*`), then the defaults.
 *
 * ```ts
 * const provider = local({ home: '/var/lib/statebox' });
 * ```
 */
export function local(options: LocalOptions = {}): LocalProvider {
  return new LocalProvider(resolveLocalOptions(options, process.env));
}

/** The `AdapterModule` entry point: `{ provider: 'local', ...options }`, with the rest from `env`. */
export function createFromConfig(options: Record<string, unknown>, env: NodeJS.ProcessEnv): SandboxProvider {
  return new LocalProvider(resolveLocalOptions(options, env));
}

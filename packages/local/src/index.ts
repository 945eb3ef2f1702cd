import type { SandboxProvider } from '@statebox/core';
import { defaultHome } from './home.js';
import { type LocalOptions, parseLocalOptions } from './options.js';
import { LocalProvider } from './provider.js';

export { defaultHome } from './home.js';
export type { LocalLimits, LocalOptions } from './options.js';
export { LocalProvider, localCapabilities } from './provider.js';

/**
 * The embedded provider: sandboxes isolated by Linux namespaces, with overlayfs layers that make
 * suspend, resume and fork O(1) in the workspace size. Needs Linux and util-linux; no daemon.
 *
 * ```ts
 * const provider = local({ home: '/var/lib/statebox' });
 * ```
 */
export function local(options: LocalOptions = {}): LocalProvider {
  const parsed = parseLocalOptions(options);
  return new LocalProvider({ ...parsed, home: parsed.home ?? defaultHome() });
}

/**
 * Entry point for `createProvider({ provider: 'local', ... })`. Reads `STATEBOX_HOME` and
 * `STATEBOX_LOCAL_NETWORK=1`, `STATEBOX_LOCAL_DURABILITY=fsync` and `STATEBOX_LOCAL_UID` from the environment when the options leave them out.
 */
export function createFromConfig(options: Record<string, unknown>, env: NodeJS.ProcessEnv): SandboxProvider {
  const parsed = parseLocalOptions(options);
  const network =
    parsed.network ?? (env.STATEBOX_LOCAL_NETWORK === '1' || env.STATEBOX_LOCAL_NETWORK === 'true');
  const durability = parsed.durability ?? (env.STATEBOX_LOCAL_DURABILITY === 'fsync' ? 'fsync' : undefined);
  const sandboxUid =
    parsed.sandboxUid ??
    (env.STATEBOX_LOCAL_UID
      ? parseLocalOptions({ sandboxUid: Number(env.STATEBOX_LOCAL_UID) }).sandboxUid
      : undefined);
  return new LocalProvider({
    ...parsed,
    network,
    ...(durability && { durability }),
    ...(sandboxUid !== undefined && { sandboxUid }),
    home: parsed.home ?? defaultHome(env),
  });
}

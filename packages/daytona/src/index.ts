import type { SandboxProvider } from '@statebox/core';
import { type DaytonaProviderOptions, resolveOptions } from './options.js';
import { DaytonaProvider } from './provider.js';

export { capabilitiesFor } from './capabilities.js';
export {
  type DaytonaProviderOptions,
  DEFAULT_API_URL,
  DEFAULT_TARGET,
  DEFAULT_WORKDIR,
  type SuspendTier,
} from './options.js';
export { DaytonaProvider } from './provider.js';

/**
 * A statebox provider on Daytona, through the real `@daytonaio/sdk`.
 *
 * ```ts
 * import { createStatebox } from '@statebox/core';
 * import { daytona } from '@statebox/daytona';
 * const statebox = createStatebox({ provider: daytona({ tier: 'archive' }) }); // DAYTONA_API_KEY from env
 * ```
 */
export function daytona(options: DaytonaProviderOptions = {}): DaytonaProvider {
  return new DaytonaProvider(resolveOptions(options as Record<string, unknown>, process.env));
}

/**
 * The `AdapterModule` entry point: `{ provider: 'daytona', ...options }`, the rest from `env`. Without
 * credentials (no `apiKey`, no `DAYTONA_API_KEY`) it starts the loopback emulator from
 * `@statebox/daytona/testing` and points the provider at it, so a demo runs offline; it then sets
 * `DAYTONA_API_KEY`, `DAYTONA_API_URL`, `DAYTONA_TARGET` and `DAYTONA_USE_DEPRECATED_POLLING` in the
 * environment, so that processes started afterwards (the demo's workers) use the same emulator.
 */
export async function createFromConfig(
  options: Record<string, unknown>,
  env: NodeJS.ProcessEnv,
): Promise<SandboxProvider> {
  if (!options.apiKey && !env.DAYTONA_API_KEY) {
    const { startDaytonaForTests } = await import('./testing.js');
    const { provider, emulator } = await startDaytonaForTests({
      ...(options as DaytonaProviderOptions),
      emulator: { unref: true },
    });
    // Processes this one starts (the demo's workers) reach the same emulator through their environment.
    const reach = {
      DAYTONA_API_KEY: emulator.apiKey,
      DAYTONA_API_URL: emulator.apiUrl,
      DAYTONA_TARGET: emulator.target,
      DAYTONA_USE_DEPRECATED_POLLING: 'true',
    };
    Object.assign(env, reach);
    if (env !== process.env) Object.assign(process.env, reach);
    return provider;
  }
  return new DaytonaProvider(resolveOptions(options, env));
}

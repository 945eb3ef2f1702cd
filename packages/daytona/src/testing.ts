/**
 * `@statebox/daytona/testing`: what the adapter's tests, the runner's tests, the demo and the benchmarks
 * share. `startDaytonaForTests()` starts the loopback Daytona emulator (`@statebox/daytona-emulator`, backed
 * by the local provider) and a provider pointed at it through the real SDK.
 */
import type { DaytonaEmulator, DaytonaEmulatorOptions } from '@statebox/daytona-emulator';
import type { DaytonaProviderOptions } from './options.js';
import { resolveOptions } from './options.js';
import { DaytonaProvider } from './provider.js';

export type DaytonaForTests = {
  provider: DaytonaProvider;
  emulator: DaytonaEmulator;
  /** Another provider on the same emulator, as another process would create. */
  newProvider: (options?: DaytonaProviderOptions) => DaytonaProvider;
  close: () => Promise<void>;
};

/** Why the emulator cannot run here, or undefined: its sandboxes are the local provider's (Linux namespaces). */
export function emulatorSkipReason(): string | undefined {
  return process.platform === 'linux'
    ? undefined
    : `the Daytona emulator backs its sandboxes with the local provider, which needs Linux (this is ${process.platform})`;
}

/** Why the live suite is skipped, or undefined when `STATEBOX_LIVE` names daytona and a key is set. */
export function liveSkipReason(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const live = (env.STATEBOX_LIVE ?? '').split(',').map((name) => name.trim());
  if (!live.includes('daytona'))
    return 'live Daytona not requested: set STATEBOX_LIVE=daytona and DAYTONA_API_KEY';
  if (!env.DAYTONA_API_KEY) return 'STATEBOX_LIVE names daytona but DAYTONA_API_KEY is not set';
  return undefined;
}

/**
 * Starts the emulator on a free loopback port and a provider on it (state polled over HTTP: the emulator
 * has no socket.io channel). `emulator` options choose the sandbox class and timing.
 */
export async function startDaytonaForTests(
  options: DaytonaProviderOptions & { emulator?: DaytonaEmulatorOptions } = {},
): Promise<DaytonaForTests> {
  const { emulator: emulatorOptions, ...providerOptions } = options;
  const { startDaytonaEmulator } = await import('@statebox/daytona-emulator');
  const emulator = await startDaytonaEmulator(emulatorOptions);
  const newProvider = (extra: DaytonaProviderOptions = {}) =>
    new DaytonaProvider(
      resolveOptions(
        {
          apiKey: emulator.apiKey,
          apiUrl: emulator.apiUrl,
          target: emulator.target,
          polling: true,
          ...providerOptions,
          ...extra,
        },
        {},
      ),
    );
  return { provider: newProvider(), emulator, newProvider, close: () => emulator.close() };
}

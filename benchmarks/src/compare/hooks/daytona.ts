import type { SuspendTier } from '@statebox/daytona';
import { daytonaRawSdk } from '../../raw-sdk/daytona.ts';
import type { BackendHook } from '../backends.ts';

/** The adapter's suspend tier here (none is configured, so its default), for the raw side to match. */
const tier = (): SuspendTier => (process.env.STATEBOX_DAYTONA_TIER as SuspendTier | undefined) ?? 'stop';

/**
 * Daytona in the comparison: the loopback emulator (`@statebox/daytona/testing`, backed by the local
 * provider, reached through the real @daytonaio/sdk with state polling), or the service with
 * `--live daytona` and `DAYTONA_API_KEY`. Emulator figures are the adapter's overhead, not Daytona's latency.
 * The raw side is `@daytonaio/sdk` against the same endpoint (`src/raw-sdk/daytona.ts`, shared with
 * `--provider daytona`), with the adapter's suspend tier.
 */
export const open: BackendHook['open'] = async (context) => {
  if (context.live) {
    const apiKey = process.env.DAYTONA_API_KEY?.trim();
    if (!apiKey) return { unavailable: '--live daytona needs DAYTONA_API_KEY' };
    const apiUrl = process.env.DAYTONA_API_URL?.trim();
    const target = process.env.DAYTONA_TARGET?.trim();
    return {
      source: 'live',
      config: { provider: 'daytona', apiKey },
      raw: daytonaRawSdk({ apiKey, ...(apiUrl && { apiUrl }), ...(target && { target }) }, tier()),
      close: async () => undefined,
    };
  }
  context.progress('daytona: starting the loopback emulator');
  const { startDaytonaEmulator } = await import('@statebox/daytona-emulator');
  const emulator = await startDaytonaEmulator();
  const reach = {
    DAYTONA_API_KEY: emulator.apiKey,
    DAYTONA_API_URL: emulator.apiUrl,
    DAYTONA_TARGET: emulator.target,
    DAYTONA_USE_DEPRECATED_POLLING: 'true',
  };
  return {
    source: 'emulator',
    config: {
      provider: 'daytona',
      apiKey: emulator.apiKey,
      apiUrl: emulator.apiUrl,
      target: emulator.target,
      polling: true,
    },
    env: reach,
    raw: daytonaRawSdk(
      { apiKey: emulator.apiKey, apiUrl: emulator.apiUrl, target: emulator.target, polling: true },
      tier(),
    ),
    close: () => emulator.close(),
  };
};

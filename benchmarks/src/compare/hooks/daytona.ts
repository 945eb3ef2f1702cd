import type { BackendHook } from '../backends.ts';

/**
 * Daytona in the comparison: the loopback emulator (`@statebox/daytona/testing`, backed by the local
 * provider, reached through the real @daytonaio/sdk with state polling), or the service with
 * `--live daytona` and `DAYTONA_API_KEY`. Emulator figures are the adapter's overhead, not Daytona's latency.
 */
export const open: BackendHook['open'] = async (context) => {
  if (context.live) {
    const apiKey = process.env.DAYTONA_API_KEY?.trim();
    if (!apiKey) return { unavailable: '--live daytona needs DAYTONA_API_KEY' };
    return { source: 'live', config: { provider: 'daytona', apiKey }, close: async () => undefined };
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
    close: () => emulator.close(),
  };
};

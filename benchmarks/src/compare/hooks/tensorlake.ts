import { tensorlakeRawSdk } from '../../raw-sdk/tensorlake.ts';
import type { BackendHook } from '../backends.ts';

/**
 * Tensorlake in the comparison: the loopback emulator (`@statebox/tensorlake/testing`, backed by the local
 * provider, reached through the real tensorlake SDK), or the service with `--live tensorlake` and
 * `TENSORLAKE_API_KEY`. Emulator figures are the adapter's overhead, not Tensorlake's latency. The raw
 * side is the `tensorlake` SDK against the same endpoint (`src/raw-sdk/tensorlake.ts`, shared with
 * `--provider tensorlake`).
 */
export const open: BackendHook['open'] = async (context) => {
  if (context.live) {
    const apiKey = process.env.TENSORLAKE_API_KEY?.trim();
    if (!apiKey) return { unavailable: '--live tensorlake needs TENSORLAKE_API_KEY' };
    return {
      source: 'live',
      config: { provider: 'tensorlake', apiKey },
      raw: tensorlakeRawSdk({
        apiKey,
        ...(process.env.TENSORLAKE_API_URL && { apiUrl: process.env.TENSORLAKE_API_URL }),
      }),
      close: async () => undefined,
    };
  }
  context.progress('tensorlake: starting the loopback emulator');
  const { startEmulatedTensorlake } = await import('@statebox/tensorlake/testing');
  const emulated = await startEmulatedTensorlake();
  return {
    source: 'emulator',
    config: { provider: 'tensorlake', ...emulated.options },
    env: emulated.env,
    raw: tensorlakeRawSdk(
      { apiUrl: emulated.options.apiUrl, apiKey: emulated.options.apiKey },
      emulated.options.pollIntervalMs,
    ),
    close: () => emulated.close(),
  };
};

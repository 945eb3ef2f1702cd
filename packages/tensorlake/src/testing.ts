/**
 * `@statebox/tensorlake/testing`: what the adapter's tests, the runner's tests, the CLI demo and the
 * benchmarks share: where to run (the loopback emulator, or the real service in live mode), the refusal
 * to point a test at a non-loopback URL, and the emulator's start.
 *
 * The emulator package is imported only when an emulator is started, so the adapter does not need it
 * at run time.
 */
import type { SandboxCapabilities } from '@statebox/core';
import { isLoopbackUrl, type TensorlakeProviderOptions } from './options.js';

/** `STATEBOX_LIVE=tensorlake` (a comma-separated list) with `TENSORLAKE_API_KEY` runs against the service. */
export function isLive(env: NodeJS.ProcessEnv = process.env): boolean {
  const names = (env.STATEBOX_LIVE ?? '').split(',').map((name) => name.trim());
  return names.includes('tensorlake') && Boolean(env.TENSORLAKE_API_KEY?.trim());
}

/** Why the live suite does not run here, or `undefined` when it does. */
export function liveSkipReason(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (isLive(env)) return undefined;
  return 'live Tensorlake needs TENSORLAKE_API_KEY and STATEBOX_LIVE=tensorlake';
}

/**
 * Throws unless `url` is loopback. The SDK sends a URL that is neither loopback nor `api.*` to
 * production, so a test pointed anywhere else could act on real sandboxes with a real key.
 */
export function assertLoopbackUrl(url: string | undefined, what = 'the Tensorlake emulator'): string {
  if (!url || !isLoopbackUrl(url)) {
    throw new Error(
      `refusing to run a test against ${JSON.stringify(url)}: ${what} must be on 127.0.0.1 or localhost, ` +
        'so that no test can reach https://sandbox.tensorlake.ai with a real key. Use live mode ' +
        '(STATEBOX_LIVE=tensorlake) to test the service on purpose.',
    );
  }
  return url;
}

export type EmulatedTensorlake = {
  /** The emulator's URL, `http://127.0.0.1:<port>`. */
  url: string;
  apiKey: string;
  /** What the emulator cannot reproduce, declared by providers pointed at it. */
  capabilities: Partial<SandboxCapabilities>;
  /** Provider options pointing at the emulator (with a 20 ms poll). */
  options: TensorlakeProviderOptions;
  /** Environment variables that point `createProvider()`/`STATEBOX_PROVIDER=tensorlake` at it. */
  env: Record<string, string>;
  /** The emulator itself (request log, fault injection, sandbox table). */
  emulator: import('@statebox/tensorlake-emulator').TensorlakeEmulator;
  close(): Promise<void>;
};

/** Starts the loopback emulator (backed by the local provider) and returns how to reach it. */
export async function startEmulatedTensorlake(
  emulatorOptions: import('@statebox/tensorlake-emulator').TensorlakeEmulatorOptions = {},
): Promise<EmulatedTensorlake> {
  const { startTensorlakeEmulator } = await import('@statebox/tensorlake-emulator');
  const emulator = await startTensorlakeEmulator(emulatorOptions);
  const url = assertLoopbackUrl(emulator.url);
  const capabilities = { ...emulator.fidelity };
  return {
    url,
    apiKey: emulator.apiKey,
    capabilities,
    options: { apiUrl: url, apiKey: emulator.apiKey, pollIntervalMs: 20, capabilities },
    env: {
      TENSORLAKE_API_URL: url,
      TENSORLAKE_API_KEY: emulator.apiKey,
      STATEBOX_TENSORLAKE_CAPABILITIES: JSON.stringify(capabilities),
      STATEBOX_TENSORLAKE_POLL_MS: '20',
    },
    emulator,
    close: () => emulator.close(),
  };
}

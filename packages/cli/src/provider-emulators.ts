/**
 * Vendor backends that the demo can stand in for offline: with `STATEBOX_PROVIDER=tensorlake` and no
 * `TENSORLAKE_API_KEY`, the loopback Tensorlake emulator is started in this process and its URL and key
 * are put in the environment, which the worker processes inherit. Said so on the first line of output.
 */
export type ProviderEmulator = { description: string; close(): Promise<void> };

export async function startProviderEmulator(
  env: NodeJS.ProcessEnv = process.env,
): Promise<ProviderEmulator | undefined> {
  if (env.STATEBOX_PROVIDER?.trim() !== 'tensorlake' || env.TENSORLAKE_API_KEY?.trim()) return undefined;
  const { startEmulatedTensorlake } = await import('@statebox/tensorlake/testing');
  const emulated = await startEmulatedTensorlake();
  Object.assign(env, emulated.env);
  return {
    description:
      `no TENSORLAKE_API_KEY: Tensorlake is the loopback emulator at ${emulated.url} ` +
      '(the real tensorlake SDK over HTTP; sandboxes backed by the local provider)',
    close: () => emulated.close(),
  };
}

import type { SandboxProvider } from '@statebox/core';
import { resolveOptions, type TensorlakeProviderOptions } from './options.js';
import { TensorlakeProvider } from './provider.js';

export { TENSORLAKE_CAPABILITIES } from './capabilities.js';
export { decodeName, encodeName } from './names.js';
export {
  DEFAULT_API_URL,
  DEFAULT_MAX_NAME_LENGTH,
  DEFAULT_STATE_DIR,
  isLoopbackUrl,
  type TensorlakeProviderOptions,
} from './options.js';
export { TensorlakeProvider } from './provider.js';

/**
 * A statebox provider on Tensorlake sandboxes (`TENSORLAKE_API_KEY`, `TENSORLAKE_API_URL`).
 *
 * ```ts
 * import { createStatebox } from '@statebox/core';
 * import { tensorlake } from '@statebox/tensorlake';
 * const statebox = createStatebox({ provider: tensorlake() });
 * ```
 */
export function tensorlake(options: TensorlakeProviderOptions = {}): TensorlakeProvider {
  return new TensorlakeProvider(resolveOptions(options as Record<string, unknown>, process.env));
}

/** The `AdapterModule` entry point: `{ provider: 'tensorlake', ...options }`, the rest from `env`. */
export function createFromConfig(options: Record<string, unknown>, env: NodeJS.ProcessEnv): SandboxProvider {
  return new TensorlakeProvider(resolveOptions(options, env));
}

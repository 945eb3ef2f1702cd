import type { SandboxProvider } from '@statebox/core';
import { type DockerProviderOptions, resolveOptions } from './options.js';
import { DockerProvider } from './provider.js';

export {
  DEFAULT_DOCKER_HOST,
  DEFAULT_EGRESS_SUBNETS,
  DEFAULT_IMAGE,
  DEFAULT_LIMITS,
  DEFAULT_STATE_DIR,
  type DockerProviderOptions,
} from './options.js';
export { DockerProvider } from './provider.js';

/**
 * A statebox provider backed by a Docker Engine (`DOCKER_HOST`, or `/var/run/docker.sock`).
 *
 * ```ts
 * import { createStatebox } from '@statebox/core';
 * import { docker } from '@statebox/docker';
 * const statebox = createStatebox({ provider: docker({ image: 'statebox/debian:bookworm' }) });
 * ```
 */
export function docker(options: DockerProviderOptions = {}): DockerProvider {
  return new DockerProvider(resolveOptions(options as Record<string, unknown>, process.env));
}

/** The `AdapterModule` entry point: `{ provider: 'docker', ...options }`, with the rest from `env`. */
export function createFromConfig(options: Record<string, unknown>, env: NodeJS.ProcessEnv): SandboxProvider {
  return new DockerProvider(resolveOptions(options, env));
}

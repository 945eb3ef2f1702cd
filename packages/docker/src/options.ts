import { parseProviderOptions } from '@statebox/core';
import { z } from 'zod';

export const DEFAULT_DOCKER_HOST = 'unix:///var/run/docker.sock';
export const DEFAULT_IMAGE = 'statebox/debian:bookworm';
export const DEFAULT_STATE_DIR = '/var/lib/statebox/docker';

export type DockerProviderOptions = {
  /** The daemon: `unix:///path/docker.sock` or `tcp://host:port`. Default: `DOCKER_HOST`, else the standard socket. */
  host?: string;
  /**
   * Image for sandboxes created without `image`. Default: `STATEBOX_DOCKER_IMAGE`, else
   * `statebox/debian:bookworm` (built offline by `scripts/build-debian-image.sh`). The image needs `sleep`.
   */
  image?: string;
  /**
   * Host directory holding the workspace layers (overlay upper and lower dirs). The daemon mounts them,
   * so it must be on the daemon's host. Kept short on purpose: overlay mount options must fit in 4 KB.
   * Default: `STATEBOX_DOCKER_STATE_DIR`, else `/var/lib/statebox/docker`.
   */
  stateDir?: string;
  /**
   * How `suspend()` releases the sandbox. `'stop'` (default) stops the container: no CPU or memory is
   * used, files are kept, processes end. `'pause'` freezes it (cgroup freezer, ~20 ms each way): processes
   * survive, but their memory stays allocated, so use it only for short idle periods.
   */
  suspend?: 'stop' | 'pause';
  /** Docker network mode for new containers, e.g. `'bridge'` (default) or `'none'`. */
  network?: string;
  /** Whether a missing image is pulled (`'missing'`, default) or reported at once (`'never'`). */
  pull?: 'missing' | 'never';
  /**
   * Sealed workspace layers a sandbox may stack before they are flattened into one. Every fork seals one
   * layer in parent and child. The kernel allows 500 and mount options must fit in a page, so 64 by default.
   */
  maxLayers?: number;
  /** Image layers before a fork squashes the container's root filesystem (Docker fails at 125). Default 100. */
  maxImageDepth?: number;
};

export type ResolvedOptions = Required<DockerProviderOptions>;

const optionsSchema = z
  .object({
    host: z.string().min(1),
    image: z.string().min(1),
    stateDir: z.string().startsWith('/', 'must be an absolute path'),
    suspend: z.enum(['stop', 'pause']),
    network: z.string().min(1),
    pull: z.enum(['missing', 'never']),
    maxLayers: z.number().int().min(2).max(400),
    maxImageDepth: z.number().int().min(2).max(120),
  })
  .strict();

/** Validates options, filling what is missing from `env` and then from the defaults. */
export function resolveOptions(options: Record<string, unknown>, env: NodeJS.ProcessEnv): ResolvedOptions {
  const withDefaults = {
    host: env.DOCKER_HOST?.trim() || DEFAULT_DOCKER_HOST,
    image: env.STATEBOX_DOCKER_IMAGE?.trim() || DEFAULT_IMAGE,
    stateDir: env.STATEBOX_DOCKER_STATE_DIR?.trim() || DEFAULT_STATE_DIR,
    suspend: 'stop',
    network: 'bridge',
    pull: 'missing',
    maxLayers: 64,
    maxImageDepth: 100,
    ...Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined)),
  };
  return parseProviderOptions(
    optionsSchema,
    withDefaults,
    'docker',
    'host, image, stateDir, suspend (stop|pause), network, pull (missing|never), maxLayers, maxImageDepth',
  );
}

import { parseProviderOptions } from '@statebox/adapter-kit';
import { z } from 'zod';

export const DEFAULT_DOCKER_HOST = 'unix:///var/run/docker.sock';
export const DEFAULT_IMAGE = 'statebox/debian:bookworm';
export const DEFAULT_STATE_DIR = '/var/lib/statebox/docker';
/** Per-sandbox limits a new sandbox gets unless the options say otherwise. */
export const DEFAULT_LIMITS = {
  pidsLimit: 1024,
  memoryBytes: 2 * 1024 ** 3,
  shmBytes: 64 * 1024 ** 2,
} as const;
/** Where `network: 'egress'` sandboxes get their /29 subnets (8,192 sandboxes in a /16). */
export const DEFAULT_EGRESS_SUBNETS = '10.213.0.0/16';

export type DockerProviderOptions = {
  /** The daemon: `unix:///path/docker.sock` or `tcp://host:port`. Default: `DOCKER_HOST`, else the standard socket. */
  host?: string;
  /**
   * Image for sandboxes created without `image`. Default: `STATEBOX_DOCKER_IMAGE`, else
   * `statebox/debian:bookworm` (built offline by `scripts/build-debian-image.sh`). The image needs `sleep`
   * and `/bin/sh`.
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
  /**
   * What a sandbox's commands can reach over the network. `'none'` (default): loopback only, no route to
   * other sandboxes, the host or anywhere else. `'egress'`: its own bridge network with outbound access
   * (NAT), but still no route to other sandboxes, to any address of the host, to link-local addresses
   * (cloud metadata) or to other Docker networks. Default: `STATEBOX_DOCKER_NETWORK`, else `'none'`.
   */
  network?: 'none' | 'egress';
  /** The IPv4 range that `'egress'` sandboxes' /29 networks are cut from. Default `10.213.0.0/16`. */
  egressSubnets?: string;
  /** Whether a missing image is pulled (`'missing'`, default) or reported at once (`'never'`). */
  pull?: 'missing' | 'never';
  /**
   * Sealed workspace layers a sandbox may stack before they are flattened into one. Every fork seals one
   * layer in parent and child. The kernel allows 500 and mount options must fit in a page, so 64 by default.
   */
  maxLayers?: number;
  /** Image layers before a fork squashes the container's root filesystem (Docker fails at 125). Default 100. */
  maxImageDepth?: number;
  /** Most processes (and threads) a sandbox may have at once; a fork bomb stops there. Default 1024; 0: no limit. */
  pidsLimit?: number;
  /** Memory (and swap) a sandbox may use before its processes are OOM-killed. Default 2 GiB; 0: no limit. */
  memoryBytes?: number;
  /** Size of the sandbox's `/dev/shm` (a RAM tmpfs, counted in `memoryBytes`). Default 64 MiB. */
  shmBytes?: number;
  /** CPUs a sandbox may use, e.g. `1.5`. Default 0: no limit. */
  cpus?: number;
  /**
   * Disk quota of the container's root filesystem (Docker's `--storage-opt size`), which needs the
   * overlay2 driver on xfs mounted with `pquota`. Default 0: no quota. `/workspace` is never capped: see
   * the README's Limits. With another storage setup, `create()` fails with a `ProviderError` saying so.
   */
  diskBytes?: number;
};

export type ResolvedOptions = Required<DockerProviderOptions>;

const optionsSchema = z
  .object({
    host: z.string().min(1),
    image: z.string().min(1),
    stateDir: z.string().startsWith('/', 'must be an absolute path'),
    suspend: z.enum(['stop', 'pause']),
    network: z.enum(['none', 'egress']),
    egressSubnets: z
      .string()
      .regex(/^(\d{1,3}\.){3}\d{1,3}\/(8|9|1\d|2[0-8])$/, 'must be an IPv4 CIDR from /8 to /28'),
    pull: z.enum(['missing', 'never']),
    maxLayers: z.number().int().min(2).max(400),
    maxImageDepth: z.number().int().min(2).max(120),
    pidsLimit: z.number().int().min(0),
    memoryBytes: z
      .number()
      .int()
      .refine((value) => value === 0 || value >= 6 * 1024 ** 2, 'must be 0 (no limit) or at least 6 MiB'),
    shmBytes: z.number().int().positive(),
    cpus: z.number().min(0),
    diskBytes: z.number().int().min(0),
  })
  .strict();

const KNOWN_OPTIONS =
  'host, image, stateDir, suspend (stop|pause), network (none|egress), egressSubnets, pull (missing|never), ' +
  'maxLayers, maxImageDepth, pidsLimit, memoryBytes, shmBytes, cpus, diskBytes';

/** Validates options, filling what is missing from `env` and then from the defaults. */
export function resolveOptions(options: Record<string, unknown>, env: NodeJS.ProcessEnv): ResolvedOptions {
  const withDefaults = {
    host: env.DOCKER_HOST?.trim() || DEFAULT_DOCKER_HOST,
    image: env.STATEBOX_DOCKER_IMAGE?.trim() || DEFAULT_IMAGE,
    stateDir: env.STATEBOX_DOCKER_STATE_DIR?.trim() || DEFAULT_STATE_DIR,
    suspend: 'stop',
    network: env.STATEBOX_DOCKER_NETWORK?.trim() || 'none',
    egressSubnets: DEFAULT_EGRESS_SUBNETS,
    pull: 'missing',
    maxLayers: 64,
    maxImageDepth: 100,
    ...DEFAULT_LIMITS,
    cpus: 0,
    diskBytes: 0,
    ...Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined)),
  };
  return parseProviderOptions(optionsSchema, withDefaults, 'docker', KNOWN_OPTIONS);
}

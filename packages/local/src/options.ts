import { homedir } from 'node:os';
import { join } from 'node:path';
import { parseProviderOptions } from '@statebox/core';
import { z } from 'zod';

export type LocalOptions = {
  /**
   * The state directory holding every sandbox's layers and records. Default: `STATEBOX_HOME`, else
   * `$XDG_DATA_HOME/statebox`, else `~/.local/share/statebox`.
   */
  home?: string;
  /** Give sandboxes the host's network. Default `false`: a sandbox sees only its own loopback. */
  network?: boolean;
  /** Compact a sandbox's layer chain into one layer when it grows past this many layers. Default 64. */
  maxLayers?: number;
  /**
   * `'volatile'` (default): suspend and fork do not flush the host's disk, so they stay in milliseconds
   * however busy it is; files reach the disk by the kernel's normal writeback (within ~30 s), and fsync
   * inside a sandbox is a no-op, so a host crash can lose the last seconds of writes. `'fsync'`: fsync
   * works inside sandboxes and suspend flushes to disk, at the cost of paying for every dirty page on the
   * host filesystem at each suspend and fork.
   */
  durability?: 'volatile' | 'fsync';
  /** Environment variables for every exec in every sandbox of this provider. */
  env?: Record<string, string>;
  /**
   * When statebox runs as root: the unprivileged host uid (and gid) that sandbox commands run as, so
   * that uid 0 inside a sandbox is no one on the host. Default 1999990000; no host account may use it.
   * Rootless, commands run as the calling user and this is ignored.
   */
  sandboxUid?: number;
  /** Per-sandbox resource limits (see `LocalLimits`). */
  limits?: LocalLimits;
};

/**
 * Per-sandbox resource limits. Sizes are bytes or strings such as `'512m'`, `'4g'`. Processes and
 * memory are enforced with cgroups when statebox runs as root (see the README for rootless hosts).
 */
export type LocalLimits = {
  /** Most processes and threads at once in a sandbox (a fork bomb stops there). Default 2048. */
  pids?: number;
  /** Memory (RAM and page cache) of all the sandbox's processes; past it the kernel's OOM killer ends one. Default 4g. */
  memory?: number | string;
  /** Size of /dev/shm, a RAM-backed tmpfs. Default 64m. */
  shm?: number | string;
};

export type ResolvedLimits = { pids: number; memoryBytes: number; shmBytes: number };

/** Every option filled in: what a `LocalProvider` runs with. */
export type ResolvedLocalOptions = {
  home: string;
  network: boolean;
  maxLayers: number;
  durability: 'volatile' | 'fsync';
  env: Record<string, string>;
  sandboxUid: number;
  limits: ResolvedLimits;
  /** Directories searched for util-linux and coreutils after the standard ones (the caller's `PATH`). */
  toolPath: string[];
};

/** Default host uid (and gid) of sandbox commands when statebox runs as root. */
export const DEFAULT_SANDBOX_UID = 1_999_990_000;

export const DEFAULT_LIMITS: ResolvedLimits = {
  pids: 2048,
  memoryBytes: 4 * 1024 ** 3,
  shmBytes: 64 * 1024 ** 2,
};

const units: Record<string, number> = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/** Bytes from a number or a size like `'512m'`, `'4G'`, `'1.5g'`; undefined when malformed. */
export function parseSize(value: number | string): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value > 0 ? value : undefined;
  const match = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$/i.exec(value);
  if (!match) return undefined;
  const bytes = Math.floor(Number(match[1]) * units[match[2]!.toLowerCase()]!);
  return bytes > 0 ? bytes : undefined;
}

export function resolveLimits(limits: LocalLimits = {}): ResolvedLimits {
  return {
    pids: limits.pids ?? DEFAULT_LIMITS.pids,
    memoryBytes: limits.memory === undefined ? DEFAULT_LIMITS.memoryBytes : parseSize(limits.memory)!,
    shmBytes: limits.shm === undefined ? DEFAULT_LIMITS.shmBytes : parseSize(limits.shm)!,
  };
}

const sizeSchema = z
  .union([z.number(), z.string()])
  .refine(
    (value) => parseSize(value) !== undefined,
    'must be a positive size: bytes, or a string such as "512m" or "4g"',
  );

/** A variable name has no `=` or NUL and is not empty; a value has no NUL. */
const environmentSchema = z.record(
  z.string().regex(/^[^=\0]+$/, 'environment variable names must be non-empty, without "=" or NUL'),
  z.string().regex(/^[^\0]*$/, 'environment variable values must not contain NUL'),
);

export const localOptionsSchema = z
  .object({
    home: z.string().min(1).optional(),
    network: z.boolean().optional(),
    maxLayers: z.number().int().min(2).max(400).optional(),
    durability: z.enum(['volatile', 'fsync']).optional(),
    env: environmentSchema.optional(),
    sandboxUid: z
      .number()
      .int()
      .min(1)
      .max(2 ** 32 - 2)
      .optional(),
    limits: z
      .object({
        pids: z.number().int().min(16).optional(),
        memory: sizeSchema.optional(),
        shm: sizeSchema.optional(),
      })
      .strict()
      .optional(),
  })
  .strict();

export function parseLocalOptions(input: unknown): LocalOptions {
  return parseProviderOptions(
    localOptionsSchema,
    input,
    'local',
    "home (string), network (boolean), maxLayers (integer 2..400), durability ('volatile' or 'fsync'), env (record of strings), sandboxUid (integer), limits ({ pids, memory, shm })",
  );
}

/**
 * The state directory when no `home` option is given: `STATEBOX_HOME`, else `$XDG_DATA_HOME/statebox`,
 * else `~/.local/share/statebox`.
 */
export function defaultHome(env: NodeJS.ProcessEnv = process.env): string {
  if (env.STATEBOX_HOME) return env.STATEBOX_HOME;
  const data = env.XDG_DATA_HOME || join(homedir(), '.local', 'share');
  return join(data, 'statebox');
}

/**
 * Validates options and fills what they leave out from `env` (`STATEBOX_HOME`, `STATEBOX_LOCAL_NETWORK=1`,
 * `STATEBOX_LOCAL_DURABILITY=fsync`, `STATEBOX_LOCAL_UID`), then from the defaults. The only place the
 * local provider reads environment variables.
 */
export function resolveLocalOptions(
  options: Record<string, unknown>,
  env: NodeJS.ProcessEnv,
): ResolvedLocalOptions {
  const parsed = parseLocalOptions(options);
  const network =
    parsed.network ?? (env.STATEBOX_LOCAL_NETWORK === '1' || env.STATEBOX_LOCAL_NETWORK === 'true');
  const durability = parsed.durability ?? (env.STATEBOX_LOCAL_DURABILITY === 'fsync' ? 'fsync' : 'volatile');
  const sandboxUid =
    parsed.sandboxUid ??
    (env.STATEBOX_LOCAL_UID
      ? parseLocalOptions({ sandboxUid: Number(env.STATEBOX_LOCAL_UID) }).sandboxUid
      : undefined) ??
    DEFAULT_SANDBOX_UID;
  return {
    home: parsed.home ?? defaultHome(env),
    network,
    maxLayers: parsed.maxLayers ?? 64,
    durability,
    env: parsed.env ?? {},
    sandboxUid,
    limits: resolveLimits(parsed.limits),
    toolPath: (env.PATH ?? '').split(':').filter(Boolean),
  };
}

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
};

export const localOptionsSchema = z
  .object({
    home: z.string().min(1).optional(),
    network: z.boolean().optional(),
    maxLayers: z.number().int().min(2).max(400).optional(),
    durability: z.enum(['volatile', 'fsync']).optional(),
    env: z.record(z.string(), z.string()).optional(),
  })
  .strict();

export function parseLocalOptions(input: unknown): LocalOptions {
  return parseProviderOptions(
    localOptionsSchema,
    input,
    'local',
    "home (string), network (boolean), maxLayers (integer 2..400), durability ('volatile' or 'fsync'), env (record of strings)",
  );
}

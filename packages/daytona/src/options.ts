import { ConfigError, parseProviderOptions } from '@statebox/core';
import { z } from 'zod';

export const DEFAULT_API_URL = 'https://app.daytona.io/api';
export const DEFAULT_TARGET = 'us';
export const DEFAULT_WORKDIR = '/workspace';

/** Where `suspend()` puts a sandbox; `resume()` brings one back from any of them. */
export type SuspendTier = 'stop' | 'pause' | 'archive';

export type DaytonaProviderOptions = {
  /** API key. Default `DAYTONA_API_KEY`. Required. */
  apiKey?: string;
  /** API base URL. Default `DAYTONA_API_URL`, else `https://app.daytona.io/api`. */
  apiUrl?: string;
  /** Region. Default `DAYTONA_TARGET`, else `us`. */
  target?: string;
  /**
   * What `suspend()` does. `'stop'` (default): files kept, processes end, disk is all that is billed.
   * `'pause'`: memory kept, processes frozen (VM sandbox classes only). `'archive'`: stop, then move the
   * files to object storage (nothing billed against quota; the next start is slower).
   */
  tier?: SuspendTier;
  /**
   * Minutes a stopped sandbox stays stopped before Daytona archives it by itself (Daytona's
   * `autoArchiveInterval`; default 7 days; Daytona's maximum is 30 days).
   */
  archiveAfter?: number;
  /**
   * Minutes without toolbox activity before Daytona stops a sandbox by itself (`autoStopInterval`;
   * 0 = never). Default 15, Daytona's. A background process does not count as activity.
   */
  autoStopAfter?: number;
  /** Default working directory of every sandbox; created at `create()`. Default `/workspace`. */
  workdir?: string;
  /** Snapshot sandboxes are created from. Default Daytona's default snapshot. */
  snapshot?: string;
  /**
   * Poll `GET /sandbox/{id}` for state changes instead of Daytona's socket.io channel (the SDK's
   * `useDeprecatedPolling`). Default false; the emulator helper sets it.
   */
  polling?: boolean;
  /** Seconds each lifecycle call (create, start, stop, fork...) may take. Default 120. */
  lifecycleTimeoutSeconds?: number;
};

export type ResolvedOptions = Required<Omit<DaytonaProviderOptions, 'snapshot' | 'archiveAfter'>> & {
  snapshot: string | undefined;
  archiveAfter: number | undefined;
};

const minutes = z
  .number()
  .int()
  .min(0)
  .max(30 * 24 * 60);

const schema = z
  .object({
    apiKey: z.string().min(1).optional(),
    apiUrl: z.url().optional(),
    target: z.string().min(1).optional(),
    tier: z.enum(['stop', 'pause', 'archive']).optional(),
    archiveAfter: minutes.optional(),
    autoStopAfter: minutes.optional(),
    workdir: z.string().startsWith('/').optional(),
    snapshot: z.string().min(1).optional(),
    polling: z.boolean().optional(),
    lifecycleTimeoutSeconds: z.number().int().positive().optional(),
  })
  .strict();

const known =
  'apiKey, apiUrl, target, tier, archiveAfter, autoStopAfter, workdir, snapshot, polling, lifecycleTimeoutSeconds';

function numberFrom(env: string | undefined, name: string): number | undefined {
  if (env === undefined || env === '') return undefined;
  const value = Number(env);
  if (!Number.isInteger(value) || value < 0) {
    throw new ConfigError(name, `${name} must be a whole number of minutes (got ${JSON.stringify(env)}).`);
  }
  return value;
}

/** Options over environment: `DAYTONA_API_KEY`, `DAYTONA_API_URL`, `DAYTONA_TARGET`, `STATEBOX_DAYTONA_*`. */
export function resolveOptions(input: Record<string, unknown>, env: NodeJS.ProcessEnv): ResolvedOptions {
  const options = parseProviderOptions(schema, input, 'daytona', known);
  const apiKey = options.apiKey ?? env.DAYTONA_API_KEY;
  if (!apiKey) {
    throw new ConfigError(
      'apiKey',
      'Daytona needs an API key: pass { apiKey } or set DAYTONA_API_KEY (create one at https://app.daytona.io/dashboard/keys). ' +
        'For an offline run, start the emulator with startDaytonaForTests() from @statebox/daytona/testing.',
    );
  }
  const tier = options.tier ?? (env.STATEBOX_DAYTONA_TIER as SuspendTier | undefined) ?? 'stop';
  if (!['stop', 'pause', 'archive'].includes(tier)) {
    throw new ConfigError(
      'tier',
      `STATEBOX_DAYTONA_TIER must be stop, pause or archive (got ${JSON.stringify(tier)}).`,
    );
  }
  return {
    apiKey,
    apiUrl: options.apiUrl ?? env.DAYTONA_API_URL ?? DEFAULT_API_URL,
    target: options.target ?? env.DAYTONA_TARGET ?? DEFAULT_TARGET,
    tier,
    archiveAfter:
      options.archiveAfter ??
      numberFrom(env.STATEBOX_DAYTONA_ARCHIVE_AFTER, 'STATEBOX_DAYTONA_ARCHIVE_AFTER'),
    autoStopAfter:
      options.autoStopAfter ??
      numberFrom(env.STATEBOX_DAYTONA_AUTO_STOP_AFTER, 'STATEBOX_DAYTONA_AUTO_STOP_AFTER') ??
      15,
    workdir: options.workdir ?? DEFAULT_WORKDIR,
    snapshot: options.snapshot,
    polling: options.polling ?? env.DAYTONA_USE_DEPRECATED_POLLING === 'true',
    lifecycleTimeoutSeconds: options.lifecycleTimeoutSeconds ?? 120,
  };
}

import { parseProviderOptions } from '@statebox/adapter-kit';
import { z } from 'zod';

export type CloudflareProviderOptions = {
  /**
   * Base URL of a deployed statebox Worker, e.g. `https://statebox.example.workers.dev`. Default:
   * `STATEBOX_CLOUDFLARE_URL`. Without it, `createFromConfig` starts a local Worker (workerd and Docker)
   * when `local` allows.
   */
  url?: string;
  /** The Worker's bearer token (its `STATEBOX_TOKEN` secret). Default: `STATEBOX_CLOUDFLARE_TOKEN`. */
  token?: string;
  /** Per-request limit for quick calls (get, list, kill, file probes), in ms. Default 60 000. */
  requestTimeoutMs?: number;
  /** Limit for create, suspend, resume, fork and destroy, which start containers and move backups. Default 600 000. */
  lifecycleTimeoutMs?: number;
  /**
   * Without a URL: `'auto'` (default) starts the Worker in local workerd with containers in local
   * Docker and says so on stderr; `'never'` throws a `ConfigError`. Default: `STATEBOX_CLOUDFLARE_LOCAL`.
   */
  local?: 'auto' | 'never';
};

export type ResolvedOptions = {
  url: string | undefined;
  token: string | undefined;
  requestTimeoutMs: number;
  lifecycleTimeoutMs: number;
  local: 'auto' | 'never';
};

const optionsSchema = z
  .object({
    url: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).optional(),
    token: z.string().min(1).optional(),
    requestTimeoutMs: z.number().int().positive(),
    lifecycleTimeoutMs: z.number().int().positive(),
    local: z.enum(['auto', 'never']),
  })
  .strict();

const KNOWN_OPTIONS = 'url, token, requestTimeoutMs, lifecycleTimeoutMs, local (auto|never)';

/** Validates options, filling what is missing from `env` and then from the defaults. */
export function resolveOptions(options: Record<string, unknown>, env: NodeJS.ProcessEnv): ResolvedOptions {
  const withDefaults = {
    url: env.STATEBOX_CLOUDFLARE_URL?.trim() || undefined,
    token: env.STATEBOX_CLOUDFLARE_TOKEN?.trim() || undefined,
    requestTimeoutMs: 60_000,
    lifecycleTimeoutMs: 600_000,
    local: env.STATEBOX_CLOUDFLARE_LOCAL?.trim() || 'auto',
    ...Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined)),
  };
  const parsed = parseProviderOptions(optionsSchema, withDefaults, 'cloudflare', KNOWN_OPTIONS);
  return { ...parsed, url: parsed.url?.replace(/\/+$/, ''), token: parsed.token };
}

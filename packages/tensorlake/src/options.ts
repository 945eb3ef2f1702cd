import { ConfigError, parseProviderOptions, type SandboxCapabilities } from '@statebox/core';
import { z } from 'zod';

export const DEFAULT_API_URL = 'https://api.tensorlake.ai';
export const DEFAULT_NAMESPACE = 'default';
/** Where the adapter keeps its per-sandbox files (create-time env, exec scratch) inside the VM. */
export const DEFAULT_STATE_DIR = '/root/.statebox';
/** Tensorlake documents no limit on names (UNCONFIRMED); 253 is the DNS name length. */
export const DEFAULT_MAX_NAME_LENGTH = 253;

export type TensorlakeProviderOptions = {
  /** API key. Default: `TENSORLAKE_API_KEY`. Required. */
  apiKey?: string;
  /**
   * API URL. Default: `TENSORLAKE_API_URL`, else `https://api.tensorlake.ai`. Only `https://api.<domain>`
   * or a loopback URL (`http://127.0.0.1:<port>`, `http://localhost:<port>`) is accepted: the SDK sends
   * any other URL's calls to `https://sandbox.tensorlake.ai` without saying so.
   */
  apiUrl?: string;
  /** Namespace (used by loopback URLs only). Default: `TENSORLAKE_NAMESPACE`, else `INDEXIFY_NAMESPACE`, else `default`. */
  namespace?: string;
  /** Sandbox image for `create()` without `image`. Default: `STATEBOX_TENSORLAKE_IMAGE`, else the service's default. */
  image?: string;
  /** vCPUs per sandbox. Default 1. */
  cpus?: number;
  /** Memory per sandbox in MB. Default 1024. */
  memoryMb?: number;
  /** Root disk in MB. Default: the service's (10 GiB). */
  diskMb?: number;
  /** Idle seconds before the service suspends a named sandbox by itself. Default: the service's (600). */
  timeoutSecs?: number;
  /** How often suspend, resume, create and fork poll the sandbox's status, in ms. Default 100 (the SDK's is 1000). */
  pollIntervalMs?: number;
  /** Longest a create, suspend, resume or fork may wait for the sandbox to settle, in ms. Default 300 000. */
  operationTimeoutMs?: number;
  /** Per-HTTP-request timeout of the SDK, in seconds. Default 300. */
  requestTimeoutSecs?: number;
  /**
   * Longest sandbox name the adapter makes; labels and the parent id are kept in the name. Tensorlake
   * documents no limit (UNCONFIRMED), so the default is 253, the DNS name length. Default 253.
   */
  maxNameLength?: number;
  /** Directory inside each sandbox for the adapter's own files. Default `/root/.statebox`. */
  stateDir?: string;
  /**
   * Declares a weaker fidelity than Tensorlake's, for a backend that cannot keep it (the loopback
   * emulator copies files but not processes). Never a stronger one: the conformance suite checks.
   */
  capabilities?: Partial<SandboxCapabilities>;
};

export type ResolvedOptions = Required<
  Omit<TensorlakeProviderOptions, 'image' | 'diskMb' | 'timeoutSecs' | 'capabilities'>
> &
  Pick<TensorlakeProviderOptions, 'image' | 'diskMb' | 'timeoutSecs' | 'capabilities'>;

const optionsSchema = z
  .object({
    apiKey: z.string().min(1),
    apiUrl: z.string().url(),
    namespace: z.string().regex(/^[A-Za-z0-9_-]+$/, 'must be letters, digits, _ or -'),
    image: z.string().min(1).optional(),
    cpus: z.number().positive(),
    memoryMb: z.number().int().positive(),
    diskMb: z.number().int().positive().optional(),
    timeoutSecs: z.number().int().positive().optional(),
    pollIntervalMs: z.number().int().min(1).max(60_000),
    operationTimeoutMs: z.number().int().positive(),
    requestTimeoutSecs: z.number().positive(),
    maxNameLength: z.number().int().min(40).max(4096),
    stateDir: z.string().regex(/^\/[A-Za-z0-9._/-]+$/, 'must be an absolute path of [A-Za-z0-9._/-]'),
    capabilities: z.record(z.string(), z.unknown()).optional(),
  })
  .strict();

const KNOWN_OPTIONS =
  'apiKey, apiUrl, namespace, image, cpus, memoryMb, diskMb, timeoutSecs, pollIntervalMs, ' +
  'operationTimeoutMs, requestTimeoutSecs, maxNameLength, stateDir, capabilities';

/** True when the host is this machine (the SDK keeps such URLs as they are, with namespaced paths). */
export function isLoopbackUrl(url: string): boolean {
  try {
    const host = new URL(url).hostname.replace(/^\[|\]$/g, '');
    return host === 'localhost' || /^127\./.test(host) || host === '::1';
  } catch {
    return false;
  }
}

/** Validates options, filling what is missing from `env`, then from the defaults. */
export function resolveOptions(options: Record<string, unknown>, env: NodeJS.ProcessEnv): ResolvedOptions {
  const given = Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined));
  const withDefaults = {
    apiUrl: env.TENSORLAKE_API_URL?.trim() || DEFAULT_API_URL,
    namespace: env.TENSORLAKE_NAMESPACE?.trim() || env.INDEXIFY_NAMESPACE?.trim() || DEFAULT_NAMESPACE,
    ...(env.TENSORLAKE_API_KEY?.trim() && { apiKey: env.TENSORLAKE_API_KEY.trim() }),
    ...(env.STATEBOX_TENSORLAKE_IMAGE?.trim() && { image: env.STATEBOX_TENSORLAKE_IMAGE.trim() }),
    cpus: 1,
    memoryMb: 1024,
    pollIntervalMs: env.STATEBOX_TENSORLAKE_POLL_MS?.trim() ? Number(env.STATEBOX_TENSORLAKE_POLL_MS) : 100,
    ...(env.STATEBOX_TENSORLAKE_CAPABILITIES?.trim() && {
      capabilities: parseCapabilities(env.STATEBOX_TENSORLAKE_CAPABILITIES),
    }),
    operationTimeoutMs: 300_000,
    requestTimeoutSecs: 300,
    maxNameLength: DEFAULT_MAX_NAME_LENGTH,
    stateDir: DEFAULT_STATE_DIR,
    ...given,
  };
  if (withDefaults.apiKey === undefined) {
    throw new ConfigError(
      'apiKey',
      'The tensorlake provider needs an API key: set TENSORLAKE_API_KEY (from https://cloud.tensorlake.ai) or pass { apiKey }.',
    );
  }
  const resolved = parseProviderOptions(optionsSchema, withDefaults, 'tensorlake', KNOWN_OPTIONS);
  const url = new URL(resolved.apiUrl);
  if (!isLoopbackUrl(resolved.apiUrl) && !(url.protocol === 'https:' && url.hostname.startsWith('api.'))) {
    throw new ConfigError(
      'apiUrl',
      `Invalid tensorlake provider option 'apiUrl': ${resolved.apiUrl} is neither https://api.<domain> nor a loopback URL; ` +
        'the tensorlake SDK would silently send its calls to https://sandbox.tensorlake.ai instead. ' +
        'Set TENSORLAKE_API_URL to https://api.tensorlake.ai, or to http://127.0.0.1:<port> for an emulator.',
    );
  }
  return resolved as ResolvedOptions;
}

/** `STATEBOX_TENSORLAKE_CAPABILITIES`: a JSON object of weaker capabilities (set for the emulator). */
function parseCapabilities(text: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(text);
    if (value && typeof value === 'object' && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    // reported below
  }
  throw new ConfigError(
    'STATEBOX_TENSORLAKE_CAPABILITIES',
    `STATEBOX_TENSORLAKE_CAPABILITIES must be a JSON object of capabilities, e.g. {"fork":"filesystem"}; got ${JSON.stringify(text)}.`,
  );
}

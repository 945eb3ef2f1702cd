import { isStateboxError } from '@statebox/core';

/** A mistake on the command line: printed with the usage hint, exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** `--name value` as an integer in [min, max], or a UsageError that says what was wrong. */
export function integerFlag(
  name: string,
  value: string | undefined,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
) {
  if (value === undefined) return undefined;
  const parsed = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(parsed) || parsed < min || parsed > max) {
    throw new UsageError(
      `--${name} must be a whole number from ${min}${max < Number.MAX_SAFE_INTEGER ? ` to ${max}` : ''}, not ${JSON.stringify(value)}`,
    );
  }
  return parsed;
}

type ApiErrorLike = {
  status?: number;
  error?: { error?: { message?: string; type?: string } };
  message?: string;
};

/**
 * One readable line for an error, with the fix when the cause is known: API errors of the SDK (a
 * status and the server's message, never the raw JSON body), statebox errors, anything else.
 * `role` says which credential was in use, so a 401 names the right variable.
 */
export function describeFailure(error: unknown, role: 'application' | 'worker'): string {
  const api = error as ApiErrorLike;
  if (typeof api?.status === 'number') {
    const message = api.error?.error?.message ?? String(api.message ?? '').replace(/^\d+\s+\{.*$/s, '');
    const keyName = role === 'worker' ? 'ANTHROPIC_ENVIRONMENT_KEY' : 'ANTHROPIC_API_KEY';
    switch (api.status) {
      case 401:
        return `the API rejected ${keyName} (401: ${message}). Check the key${role === 'worker' ? ' (an environment key from the Console, not an API key)' : ''}.`;
      case 403:
        return `not allowed (403: ${message}). ${role === 'worker' ? 'Is ANTHROPIC_ENVIRONMENT_KEY the key of STATEBOX_ENVIRONMENT_ID?' : 'Check the key and the ids.'}`;
      case 404:
        return `not found (404: ${message}). Check ${role === 'worker' ? 'STATEBOX_ENVIRONMENT_ID' : 'the session or agent id, and STATEBOX_ENVIRONMENT_ID / STATEBOX_AGENT_ID'}.`;
      default:
        return `the API answered ${api.status}: ${message}`;
    }
  }
  if (error instanceof Error) {
    const code = (error as { code?: string }).code;
    if (code === 'ECONNREFUSED' || /Connection error/.test(error.message)) {
      return `cannot reach the API (${error.message}). Check ANTHROPIC_BASE_URL, or start \`statebox emulator\`.`;
    }
    return `${isStateboxError(error) ? error.name : error.name}: ${error.message}`;
  }
  return String(error);
}

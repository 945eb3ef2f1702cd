import { ConfigError } from '@statebox/core';
import type { z } from 'zod';

/**
 * Validates an adapter's options with its zod schema. A bad or unknown option becomes a `ConfigError`
 * that names it, says what is wrong and lists the options there are, so every adapter reports them alike.
 */
export function parseProviderOptions<T>(
  schema: z.ZodType<T>,
  input: unknown,
  provider: string,
  knownOptions: string,
): T {
  const parsed = schema.safeParse(input ?? {});
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const option =
    issue.path.join('.') ||
    (issue.code === 'unrecognized_keys' ? (issue as { keys: string[] }).keys.join(', ') : 'options');
  throw new ConfigError(
    option,
    `Invalid ${provider} provider option '${option}': ${issue.message}. Options: ${knownOptions}.`,
  );
}

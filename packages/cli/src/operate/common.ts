import { type ParseArgsConfig, parseArgs } from 'node:util';
import {
  createProvider,
  isStateboxError,
  type ProviderName,
  providerPackages,
  SandboxNotFoundError,
  type SandboxProvider,
  UnsupportedCapabilityError,
} from '@statebox/core';

/**
 * What the operator verbs share: flags, the provider, tables for people and JSON for scripts, byte and
 * age formatting, and errors as one line on stderr that says what to do.
 *
 * Exit codes follow docker's: 0 done, 1 an operation failed, 2 the command line was wrong; `exec` and
 * `shell` pass the command's own code through and use 125 when statebox itself failed before or
 * around it.
 */

/** A failure the user can fix: printed as one line with its hint, then exit with `code`. */
export class UsageError extends Error {
  readonly code: number;
  constructor(message: string, code = 2) {
    super(message);
    this.name = 'UsageError';
    this.code = code;
  }
}

export const providerOption = { provider: { type: 'string' } } as const;
export const jsonOption = { json: { type: 'boolean', default: false } } as const;

/** `parseArgs` with its errors turned into a usage line that names the verb's help. */
export function parseVerb<T extends NonNullable<ParseArgsConfig['options']>>(
  verb: string,
  argv: string[],
  options: T,
  usage: string,
) {
  try {
    return parseArgs({
      args: argv,
      options: { ...options, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    throw new UsageError(
      `${(error as Error).message.replace(/\. To specify.*$/, '')}. Usage: ${usage} (statebox ${verb} --help)`,
    );
  }
}

/**
 * The provider named by `--provider` (with the config file's options when it configures that provider),
 * else the configured one (config file, STATEBOX_PROVIDER, local).
 */
export async function loadProvider(name: string | undefined): Promise<SandboxProvider> {
  if (name === undefined) return createProvider();
  if (!Object.hasOwn(providerPackages, name)) {
    throw new UsageError(
      `--provider '${name}' is not a statebox backend: use one of ${Object.keys(providerPackages).join(', ')}.`,
    );
  }
  return createProvider(undefined, { providerName: name as ProviderName });
}

/** The provider's close(), where it has one (Docker keeps a keep-alive pool). */
export async function closeProvider(provider: SandboxProvider): Promise<void> {
  await (provider as { close?: () => Promise<void> }).close?.();
}

/** `k=v` pairs of repeated `--label` flags. */
export function parseLabels(values: string[] | undefined): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const value of values ?? []) {
    const at = value.indexOf('=');
    if (at <= 0) throw new UsageError(`--label '${value}' is not key=value: write --label session=sesn_123.`);
    labels[value.slice(0, at)] = value.slice(at + 1);
  }
  return labels;
}

/** A left-aligned table with two spaces between columns, as docker and kubectl print. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => (row[column] ?? '').length)),
  );
  const line = (cells: string[]) =>
    cells
      .map((cell, column) => (column === cells.length - 1 ? cell : cell.padEnd(widths[column]!)))
      .join('  ')
      .trimEnd();
  return `${[line(header), ...rows.map(line)].join('\n')}\n`;
}

/** Sizes in SI units, as docker prints them (`4.1 MB` is 4,100,000 bytes). */
export function formatBytes(bytes: number): string {
  if (bytes < 1000) return `${bytes} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = -1;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${value < 10 ? value.toFixed(1) : Math.round(value)} ${units[unit]}`;
}

/** `3 seconds`, `5 minutes`, `2 hours`, `4 days`, as `docker ps` says how old a container is. */
export function formatAge(iso: string, now = Date.now()): string {
  const seconds = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  const [value, unit] =
    seconds < 60
      ? [seconds, 'second']
      : seconds < 3600
        ? [Math.round(seconds / 60), 'minute']
        : seconds < 172_800
          ? [Math.round(seconds / 3600), 'hour']
          : [Math.round(seconds / 86_400), 'day'];
  return `${value} ${unit}${value === 1 ? '' : 's'}`;
}

export function formatMs(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

/** The error as one line for stderr: `statebox: <message>`, with what to do for the usual cases. */
export function errorLine(error: unknown): string {
  const message = (error instanceof Error ? error.message : String(error)).replace(/\s*\n\s*/g, ' ').trim();
  let hint = '';
  if (SandboxNotFoundError.isInstance(error))
    hint = ' Run `statebox ls` to see the sandboxes of this provider.';
  const name = isStateboxError(error)
    ? `${error.name}: `
    : error instanceof UsageError
      ? ''
      : `${(error as Error)?.name ?? 'Error'}: `;
  return `statebox: ${name}${message}${hint}\n`;
}

/** The optional provider method, or an error that names the backend and what to use instead. */
export function requireMethod<K extends 'terminal' | 'usage' | 'prune'>(
  provider: SandboxProvider,
  method: K,
  instead: string,
): NonNullable<SandboxProvider[K]> {
  const found = provider[method];
  if (typeof found !== 'function') {
    throw new UnsupportedCapabilityError(method, provider.name, instead, { operation: method });
  }
  return (found as (...args: never[]) => unknown).bind(provider) as NonNullable<SandboxProvider[K]>;
}

export function writeJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

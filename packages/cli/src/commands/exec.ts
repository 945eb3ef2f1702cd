import { DEFAULT_WORKDIR, isStateboxError, resolveSandboxPath, TimeoutError } from '@statebox/core';
import {
  closeProvider,
  errorLine,
  loadProvider,
  parseVerb,
  providerOption,
  UsageError,
} from '../operate/common.js';

export const execUsage =
  'statebox exec [--workdir DIR] [--env KEY=VALUE]... [--timeout SECONDS] [--provider NAME] ID -- COMMAND [ARG]...';

/** What statebox itself failed with, before or around the command (docker exec uses the same code). */
export const STATEBOX_FAILED = 125;

/** Splits `statebox exec [flags] ID -- CMD...`: the command is everything after the first `--`. */
export function splitCommand(argv: string[]): { flags: string[]; command: string[] } {
  const at = argv.indexOf('--');
  return at < 0 ? { flags: argv, command: [] } : { flags: argv.slice(0, at), command: argv.slice(at + 1) };
}

async function readStdin(): Promise<Uint8Array | undefined> {
  // A terminal is not piped input: like `docker exec` without -i, the command gets an empty stdin.
  if (process.stdin.isTTY) return undefined;
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return chunks.length > 0 ? new Uint8Array(Buffer.concat(chunks)) : undefined;
}

export function parseEnvironment(values: string[] | undefined): Record<string, string> {
  const environment: Record<string, string> = {};
  for (const value of values ?? []) {
    const at = value.indexOf('=');
    if (at <= 0) throw new UsageError(`--env '${value}' is not KEY=VALUE: write --env NAME=value.`);
    environment[value.slice(0, at)] = value.slice(at + 1);
  }
  return environment;
}

export async function execCommand(argv: string[]): Promise<number> {
  const { flags, command: after } = splitCommand(argv);
  const { values, positionals } = parseVerb(
    'exec',
    flags,
    {
      ...providerOption,
      workdir: { type: 'string', short: 'w' },
      env: { type: 'string', short: 'e', multiple: true },
      timeout: { type: 'string' },
    },
    execUsage,
  );
  if (values.help) {
    process.stdout.write(
      `${execUsage}\n  Runs a command in a running sandbox: piped stdin goes to it, its output streams as it comes, and its exit code is statebox's.\n`,
    );
    return 0;
  }
  const [sandboxId, ...rest] = positionals;
  const command = [...rest, ...after];
  if (!sandboxId || command.length === 0)
    throw new UsageError(`exec needs a sandbox id and a command: ${execUsage}`);
  const timeout = values.timeout === undefined ? undefined : Number(values.timeout);
  if (timeout !== undefined && !(Number.isFinite(timeout) && timeout > 0)) {
    throw new UsageError(`--timeout '${String(values.timeout)}' is not a positive number of seconds.`);
  }
  const environment = parseEnvironment(values.env as string[] | undefined);
  const stdin = await readStdin();
  let provider: Awaited<ReturnType<typeof loadProvider>> | undefined;
  const abort = new AbortController();
  const interrupt = () => abort.abort(new Error('interrupted (SIGINT)'));
  process.once('SIGINT', interrupt);
  try {
    provider = await loadProvider(values.provider as string | undefined);
    const info = await provider.get(sandboxId);
    const workdir = info.workdir || DEFAULT_WORKDIR;
    const streaming = provider.capabilities.execStreaming;
    const output = await provider.exec(sandboxId, {
      command,
      cwd: resolveSandboxPath((values.workdir as string | undefined) ?? workdir, workdir, sandboxId),
      env: environment,
      ...(timeout !== undefined && { timeoutMs: Math.ceil(timeout * 1000) }),
      ...(stdin && { stdin }),
      signal: abort.signal,
      // Streamed output is written as it comes; what the backend keeps besides is only a small tail.
      maxOutputBytes: streaming ? 64 * 1024 : 1024 * 1024 * 1024,
      onStdout: (chunk) => process.stdout.write(chunk),
      onStderr: (chunk) => process.stderr.write(chunk),
    });
    return output.exitCode;
  } catch (error) {
    if (TimeoutError.isInstance(error) || abort.signal.aborted || isStateboxError(error)) {
      process.stderr.write(errorLine(abort.signal.aborted ? abort.signal.reason : error));
      return abort.signal.aborted ? 130 : STATEBOX_FAILED;
    }
    throw error;
  } finally {
    process.off('SIGINT', interrupt);
    if (provider) await closeProvider(provider);
  }
}

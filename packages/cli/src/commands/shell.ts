import { DEFAULT_WORKDIR, resolveSandboxPath } from '@statebox/core';
import {
  closeProvider,
  loadProvider,
  parseVerb,
  providerOption,
  requireMethod,
  UsageError,
} from '../operate/common.js';
import { parseEnvironment, splitCommand } from './exec.js';

export const shellUsage =
  'statebox shell [--workdir DIR] [--env KEY=VALUE]... [--provider NAME] ID [-- COMMAND [ARG]...]';

/**
 * An interactive shell in a running sandbox, on a terminal of the sandbox's own: this process puts the
 * user's terminal in raw mode and relays bytes both ways, and window size changes.
 */
export async function shellCommand(argv: string[]): Promise<number> {
  const { flags, command } = splitCommand(argv);
  const { values, positionals } = parseVerb(
    'shell',
    flags,
    {
      ...providerOption,
      workdir: { type: 'string', short: 'w' },
      env: { type: 'string', short: 'e', multiple: true },
    },
    shellUsage,
  );
  if (values.help) {
    process.stdout.write(
      `${shellUsage}\n  An interactive shell (or COMMAND) with a terminal, where the backend can give one.\n`,
    );
    return 0;
  }
  const [sandboxId, ...extra] = positionals;
  if (!sandboxId || extra.length > 0) throw new UsageError(`shell needs one sandbox id: ${shellUsage}`);
  if (!process.stdin.isTTY || !process.stdout.isTTY) {
    throw new UsageError(
      `statebox shell needs a terminal (stdin and stdout are not one). For scripts use: statebox exec ${sandboxId} -- COMMAND`,
      1,
    );
  }
  const environment = {
    TERM: process.env.TERM || 'xterm-256color',
    ...parseEnvironment(values.env as string[] | undefined),
  };
  const provider = await loadProvider(values.provider as string | undefined);
  try {
    const terminal = requireMethod(
      provider,
      'terminal',
      `Its sandboxes have no interactive terminal here; run commands with \`statebox exec ${sandboxId} -- COMMAND\`.`,
    );
    const info = await provider.get(sandboxId);
    const workdir = info.workdir || DEFAULT_WORKDIR;
    const session = await terminal(sandboxId, {
      ...(command.length > 0 && { command }),
      cwd: resolveSandboxPath((values.workdir as string | undefined) ?? workdir, workdir, sandboxId),
      env: environment,
      columns: process.stdout.columns || 80,
      rows: process.stdout.rows || 24,
    });
    session.onData((chunk) => process.stdout.write(chunk));
    const onInput = (chunk: Buffer) => session.write(new Uint8Array(chunk));
    const onResize = () => session.resize(process.stdout.columns, process.stdout.rows);
    process.stdin.setRawMode(true);
    process.stdin.on('data', onInput);
    process.stdout.on('resize', onResize);
    // Ctrl-C and friends reach the sandbox as bytes (raw mode); a signal from outside ends the session.
    const hangUp = () => session.kill();
    process.once('SIGTERM', hangUp);
    process.once('SIGHUP', hangUp);
    try {
      return await session.exited;
    } finally {
      process.stdin.off('data', onInput);
      process.stdin.setRawMode(false);
      process.stdin.pause();
      process.stdout.off('resize', onResize);
      process.off('SIGTERM', hangUp);
      process.off('SIGHUP', hangUp);
    }
  } finally {
    await closeProvider(provider);
  }
}

import { randomBytes } from 'node:crypto';
import { concatBytes, truncationMarker } from '@statebox/adapter-kit';
import {
  ConfigError,
  type ExecOutput,
  type ExecRequest,
  InvalidStateError,
  ProviderError,
  SandboxNotFoundError,
  StateboxError,
  TimeoutError,
  TransientError,
} from '@statebox/core';
import type { TensorlakeClient } from './client.js';
import { httpStatus, PROVIDER, toStateboxError } from './errors.js';
import { EXEC } from './scripts.js';
import { describeStatus } from './status.js';

/** stdin up to this size rides in the command's argv (Linux allows 128 KiB per argument). */
const INLINE_STDIN_BYTES = 48 * 1024;
/** How long an exec may take to report after its processes were killed. */
const SETTLE_MS = 15_000;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export type ExecContext = { client: TensorlakeClient; stateDir: string };

/**
 * exec on top of `processes/run`, which joins output lines as text and has no stdin: the command runs
 * under the EXEC script, which hands both streams back as base64 (byte-exact, capped head and tail), takes
 * stdin from argv (or a file written first when large), and marks every process it starts so that a
 * timeout or an abort can kill them all with one more request. One request per exec when stdin is
 * small; the base64 costs a third more bytes on the wire.
 */
export async function runExec(
  context: ExecContext,
  sandboxId: string,
  request: ExecRequest,
): Promise<ExecOutput> {
  request.signal?.throwIfAborted();
  const { client, stateDir } = context;
  const id = randomBytes(9).toString('hex');
  const argv =
    typeof request.command === 'string' ? ['/bin/sh', '-c', request.command] : [...request.command];
  const env = Object.entries(request.env ?? {}).map(([key, value]) => {
    if (!ENV_NAME.test(key)) {
      throw new ConfigError('env', `exec env name ${JSON.stringify(key)} is not a valid variable name.`);
    }
    return `${key}=${value}`;
  });
  let stdinMode = '-';
  if (request.stdin && request.stdin.byteLength > INLINE_STDIN_BYTES) {
    await client.writeFile(sandboxId, `${stateDir}/x/${id}.in`, request.stdin).catch((error: unknown) => {
      throw interrupted(error, context, sandboxId);
    });
    stdinMode = 'f';
  } else if (request.stdin) {
    stdinMode = `b${Buffer.from(request.stdin).toString('base64')}`;
  }
  // Without a timeout or a signal nothing can ask for a kill: no watchdog (EXEC's `watch`).
  const watch = request.timeoutMs || request.signal ? '1' : '0';
  const args = [
    '-c',
    EXEC,
    'statebox',
    id,
    request.cwd,
    stdinMode,
    String(request.maxOutputBytes),
    stateDir,
    watch,
  ];
  // The service's own timeout (seconds) backs ours up in case this process dies before killing.
  const backstop = request.timeoutMs ? Math.ceil(request.timeoutMs / 1000) + 30 : undefined;
  const running = client.run(sandboxId, '/bin/sh', [...args, ...env, '--', ...argv], backstop);

  let stopReason: 'timeout' | 'abort' | undefined;
  let giveUp: (error: Error) => void = () => undefined;
  const gaveUp = new Promise<never>((_, reject) => {
    giveUp = reject;
  });
  gaveUp.catch(() => undefined);
  const stop = (reason: 'timeout' | 'abort') => {
    if (stopReason) return;
    stopReason = reason;
    // The EXEC script's watchdog sees this file within 0.1 s and kills every process of the command.
    void client
      .writeFile(sandboxId, `${stateDir}/x/${id}.kill`, new Uint8Array())
      .catch(() => undefined)
      .then(() => {
        setTimeout(() => giveUp(new Error('exec did not report after its kill')), SETTLE_MS).unref();
      });
  };
  const timer = request.timeoutMs ? setTimeout(() => stop('timeout'), request.timeoutMs) : undefined;
  const onAbort = () => stop('abort');
  request.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const result = await Promise.race([running, gaveUp]);
    if (stopReason === 'abort') throw request.signal?.reason;
    const output = decodeOutput(result, request.maxOutputBytes, sandboxId);
    if (stopReason === 'timeout') {
      throw new TimeoutError('exec', request.timeoutMs!, {
        sandboxId,
        stdout: output.stdout,
        stderr: output.stderr,
      });
    }
    if (request.onStdout && output.stdout.byteLength > 0) request.onStdout(output.stdout);
    if (request.onStderr && output.stderr.byteLength > 0) request.onStderr(output.stderr);
    return output;
  } catch (error) {
    if (stopReason === 'abort') throw request.signal?.reason;
    if (StateboxError.isInstance(error)) throw error;
    if (stopReason === 'timeout') throw new TimeoutError('exec', request.timeoutMs!, { sandboxId });
    throw await interrupted(error, context, sandboxId);
  } finally {
    if (timer) clearTimeout(timer);
    request.signal?.removeEventListener('abort', onAbort);
  }
}

/** Rebuilds both streams from the EXEC script's `size\nbase64` output. */
export function decodeOutput(
  result: { exitCode: number; stdout: string; stderr: string },
  cap: number,
  sandboxId: string,
): ExecOutput {
  const stdout = decodeStream(result.stdout, cap, sandboxId);
  const stderr = decodeStream(result.stderr, cap, sandboxId);
  return {
    exitCode: result.exitCode,
    stdout: stdout.bytes,
    stderr: stderr.bytes,
    truncated: { stdout: stdout.truncated, stderr: stderr.truncated },
  };
}

function decodeStream(
  text: string,
  cap: number,
  sandboxId: string,
): { bytes: Uint8Array; truncated: boolean } {
  // Anything a shell printed before the size line (a job notice) is not part of the stream.
  const start = text.lastIndexOf('statebox:');
  const framed = start === -1 ? '' : text.slice(start + 'statebox:'.length);
  const newline = framed.indexOf('\n');
  const sizeText = newline === -1 ? framed : framed.slice(0, newline);
  const size = Number(sizeText.trim());
  if (sizeText.trim() === '' || !Number.isSafeInteger(size)) {
    throw new ProviderError(
      PROVIDER,
      `exec in sandbox ${sandboxId}: the sandbox returned output statebox cannot read (${JSON.stringify(text.slice(0, 120))}); ` +
        'its image needs /bin/sh, base64 and coreutils.',
      { sandboxId, operation: 'exec' },
    );
  }
  const kept = Buffer.from(newline === -1 ? '' : framed.slice(newline + 1).replace(/\s+/g, ''), 'base64');
  if (size <= cap) return { bytes: new Uint8Array(kept), truncated: false };
  const head = Math.ceil(cap / 2);
  const marker = new TextEncoder().encode(truncationMarker(size - kept.byteLength));
  return {
    bytes: concatBytes([kept.subarray(0, head), marker, kept.subarray(head)]),
    truncated: true,
  };
}

/**
 * What a failed data-plane request means, from the sandbox's status: suspended or in transition is
 * `InvalidStateError`, gone is `InvalidStateError` too (the exec was in flight) or `SandboxNotFoundError`
 * (it never started), running is a broken stream (`InvalidStateError` when the service answered, e.g. a
 * copy restarted it) or `TransientError` when the request never got through.
 */
export async function interrupted(
  error: unknown,
  context: ExecContext,
  sandboxId: string,
  operation = 'exec',
): Promise<Error> {
  if (StateboxError.isInstance(error)) return error;
  let status: string;
  try {
    status = (await context.client.get(sandboxId, operation)).status;
  } catch (lookup) {
    if (SandboxNotFoundError.isInstance(lookup)) return lookup;
    return toStateboxError(error, context.client.context(operation, sandboxId));
  }
  if (status === 'terminated' || status === 'timeout') {
    return new SandboxNotFoundError(sandboxId, { provider: PROVIDER, operation, cause: error });
  }
  if (status !== 'running') {
    return new InvalidStateError(
      sandboxId,
      operation,
      describeStatus(status),
      'Resume it (or wait for it to settle) and try again.',
    );
  }
  const mapped = toStateboxError(error, context.client.context(operation, sandboxId));
  // A request that never got through is transient; a stream that broke once the command ran means the
  // sandbox stopped under it (a copy restarting it on the emulator, a migration).
  if (
    TransientError.isInstance(mapped) &&
    httpStatus(error) === undefined &&
    !/error sending request/i.test(String(error))
  ) {
    return new InvalidStateError(
      sandboxId,
      operation,
      'restarted while the command ran (its connection broke)',
      'Run the command again.',
    );
  }
  return mapped;
}

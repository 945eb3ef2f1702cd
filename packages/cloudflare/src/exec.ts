import { randomUUID } from 'node:crypto';
import { OutputBuffer } from '@statebox/adapter-kit';
import {
  type ExecOutput,
  type ExecRequest,
  InvalidStateError,
  SandboxNotFoundError,
  StateboxError,
  TimeoutError,
  TransientError,
} from '@statebox/core';
import type { WorkerClient } from './client.js';
import { fromWorker, PROVIDER } from './errors.js';
import { sseEvents } from './sse.js';

type ExecEvent =
  | { type: 'stdout' | 'stderr'; data: string }
  | { type: 'exit'; exitCode: number }
  | { type: 'error'; code: string; message: string; status?: string; path?: string };

const ONE_DAY_MS = 24 * 3600 * 1000;

/**
 * Runs a command through the Worker's `/exec` route (Server-Sent Events relayed from the SDK's
 * execStream). Timeouts and aborts are enforced here: the stream is dropped and the Worker kills every
 * process carrying this exec's id, setsid daemons included, before the call settles.
 */
export async function runExec(
  client: WorkerClient,
  sandboxId: string,
  request: ExecRequest,
  requestTimeoutMs: number,
): Promise<ExecOutput> {
  if (request.signal?.aborted) throw request.signal.reason;
  const execId = randomUUID();
  const stdout = new OutputBuffer(request.maxOutputBytes);
  const stderr = new OutputBuffer(request.maxOutputBytes);
  const controller = new AbortController();
  let timedOut = false;
  const kill = () =>
    client
      .send(`/v1/sandboxes/${encodeURIComponent(sandboxId)}/exec/${execId}/kill`, {
        method: 'POST',
        timeoutMs: requestTimeoutMs,
        context: { sandboxId, operation: 'exec' },
      })
      .catch(() => undefined);
  const timer =
    request.timeoutMs === undefined
      ? undefined
      : setTimeout(() => {
          timedOut = true;
          controller.abort();
        }, request.timeoutMs);
  const onAbort = () => controller.abort();
  request.signal?.addEventListener('abort', onAbort, { once: true });

  const interrupted = async (): Promise<never> => {
    await kill();
    if (timedOut) {
      throw new TimeoutError('exec', request.timeoutMs!, {
        sandboxId,
        stdout: stdout.toBytes(),
        stderr: stderr.toBytes(),
      });
    }
    throw request.signal!.reason;
  };

  try {
    let response: Response;
    try {
      response = await client.send(`/v1/sandboxes/${encodeURIComponent(sandboxId)}/exec`, {
        method: 'POST',
        body: {
          execId,
          command: request.command,
          cwd: request.cwd,
          env: request.env ?? {},
          ...(request.timeoutMs !== undefined ? { timeoutMs: request.timeoutMs } : {}),
          ...(request.stdin && request.stdin.byteLength > 0
            ? { stdin: Buffer.from(request.stdin).toString('base64') }
            : {}),
        },
        timeoutMs: (request.timeoutMs ?? ONE_DAY_MS) + 60_000,
        signal: controller.signal,
        context: { sandboxId, operation: 'exec' },
      });
    } catch (error) {
      if (controller.signal.aborted) return await interrupted();
      throw error;
    }
    let exitCode: number | undefined;
    try {
      for await (const event of sseEvents<ExecEvent>(response.body!)) {
        if (event.type === 'stdout' || event.type === 'stderr') {
          const bytes = new Uint8Array(Buffer.from(event.data, 'base64'));
          (event.type === 'stdout' ? stdout : stderr).push(bytes);
          (event.type === 'stdout' ? request.onStdout : request.onStderr)?.(bytes);
        } else if (event.type === 'exit') {
          exitCode = event.exitCode;
        } else if (event.type === 'error') {
          throw fromWorker(event.code === 'not_found' ? 404 : 409, event, {
            sandboxId,
            operation: 'exec',
            path: request.cwd,
          });
        }
      }
    } catch (error) {
      if (controller.signal.aborted) return await interrupted();
      if (StateboxError.isInstance(error)) throw error;
      exitCode = undefined;
    }
    if (controller.signal.aborted) return await interrupted();
    if (exitCode === undefined) throw await whyEnded(client, sandboxId, requestTimeoutMs);
    return {
      exitCode,
      stdout: stdout.toBytes(),
      stderr: stderr.toBytes(),
      truncated: { stdout: stdout.truncated, stderr: stderr.truncated },
    };
  } finally {
    clearTimeout(timer);
    request.signal?.removeEventListener('abort', onAbort);
  }
}

/** An exec stream that broke off: the sandbox was destroyed, suspended, or the connection failed. */
async function whyEnded(client: WorkerClient, sandboxId: string, timeoutMs: number): Promise<Error> {
  try {
    const info = await client.json<{ status: string }>(`/v1/sandboxes/${encodeURIComponent(sandboxId)}`, {
      timeoutMs,
      context: { sandboxId, operation: 'exec' },
    });
    if (info.status !== 'running') {
      return new InvalidStateError(
        sandboxId,
        'exec',
        info.status,
        'The sandbox was suspended while the command ran; resume it and run the command again.',
      );
    }
  } catch (error) {
    if (SandboxNotFoundError.isInstance(error)) return error as Error;
  }
  return new TransientError(
    `exec in sandbox ${sandboxId}: the ${PROVIDER} Worker's stream ended without an exit code.`,
    {
      sandboxId,
      operation: 'exec',
    },
  );
}

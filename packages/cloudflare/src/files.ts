import { randomUUID } from 'node:crypto';
import {
  FileTooLargeError,
  type ReadFileOptions,
  TransientError,
  type WriteFileOptions,
} from '@statebox/core';
import type { WorkerClient } from './client.js';

/** Reads a file through the Worker, which streams it from the SDK's readFileStream. */
export async function readFile(
  client: WorkerClient,
  sandboxId: string,
  path: string,
  options: ReadFileOptions,
  defaultTimeoutMs: number,
): Promise<Uint8Array> {
  const context = { sandboxId, operation: 'readFile', path };
  const query = new URLSearchParams({ path, maxBytes: `${options.maxBytes}` });
  const response = await client.send(`/v1/sandboxes/${encodeURIComponent(sandboxId)}/file?${query}`, {
    timeoutMs: options.timeoutMs ?? defaultTimeoutMs,
    signal: options.signal,
    context,
  });
  const expected = Number(response.headers.get('x-statebox-size'));
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await response.arrayBuffer());
  } catch (error) {
    if (options.signal?.aborted) throw options.signal.reason;
    throw new TransientError(`readFile ${path} in sandbox ${sandboxId}: the stream broke off (${error}).`, {
      sandboxId,
      operation: 'readFile',
      cause: error,
    });
  }
  if (bytes.byteLength > options.maxBytes)
    throw new FileTooLargeError(path, bytes.byteLength, options.maxBytes, context);
  if (Number.isFinite(expected) && bytes.byteLength !== expected) {
    throw new TransientError(
      `readFile ${path} in sandbox ${sandboxId}: got ${bytes.byteLength} of ${expected} bytes (the file changed or the stream broke off); read it again.`,
      { sandboxId, operation: 'readFile' },
    );
  }
  return bytes;
}

/**
 * Writes a file through the Worker in two steps: the bytes are staged beside the target (abortable),
 * then renamed over it. An abort or timeout before the rename leaves the old content; once the rename
 * is asked for, the call waits for it, so a write that resolves is written and one that rejects is not.
 */
export async function writeFile(
  client: WorkerClient,
  sandboxId: string,
  path: string,
  data: Uint8Array,
  options: WriteFileOptions,
  defaultTimeoutMs: number,
): Promise<void> {
  const context = { sandboxId, operation: 'writeFile', path };
  const base = `/v1/sandboxes/${encodeURIComponent(sandboxId)}/file`;
  const stage = randomUUID();
  const query = new URLSearchParams({
    path,
    stage,
    ...(options.mode !== undefined ? { mode: `${options.mode}` } : {}),
  });
  let staged: { target: string };
  try {
    staged = await client.json<{ target: string }>(`${base}?${query}`, {
      method: 'PUT',
      bytes: data,
      timeoutMs: options.timeoutMs ?? defaultTimeoutMs,
      signal: options.signal,
      context,
    });
  } catch (error) {
    // Best effort: the Worker may still be staging; a leftover is a hidden .statebox-write-* file.
    void client
      .send(`${base}/discard`, {
        method: 'POST',
        body: { path, stage },
        timeoutMs: defaultTimeoutMs,
        context,
      })
      .catch(() => undefined);
    throw error;
  }
  if (options.signal?.aborted) {
    void client
      .send(`${base}/discard`, {
        method: 'POST',
        body: { path, stage },
        timeoutMs: defaultTimeoutMs,
        context,
      })
      .catch(() => undefined);
    throw options.signal.reason;
  }
  await client.send(`${base}/commit`, {
    method: 'POST',
    body: { target: staged.target, stage },
    timeoutMs: defaultTimeoutMs,
    context,
  });
}

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

/** Writes a file through the Worker: a temporary file beside the target, renamed over it. */
export async function writeFile(
  client: WorkerClient,
  sandboxId: string,
  path: string,
  data: Uint8Array,
  options: WriteFileOptions,
  defaultTimeoutMs: number,
): Promise<void> {
  const query = new URLSearchParams({
    path,
    ...(options.mode !== undefined ? { mode: `${options.mode}` } : {}),
  });
  await client.send(`/v1/sandboxes/${encodeURIComponent(sandboxId)}/file?${query}`, {
    method: 'PUT',
    bytes: data,
    timeoutMs: options.timeoutMs ?? defaultTimeoutMs,
    signal: options.signal,
    context: { sandboxId, operation: 'writeFile', path },
  });
}

import { FileNotFoundError, InvalidPathError } from '@statebox/core';
import { HttpError, readBody } from '@statebox/emulator-kit';
import type { TensorlakeEmulator } from '../emulator.js';
import { notFound } from '../errors.js';
import { dataPlaneTarget, pathParameter } from './data-plane.js';

/** Largest file body accepted or returned (the service's limit is UNCONFIRMED). */
const MAX_FILE_BYTES = 512 * 1024 * 1024;

/** `GET|PUT /api/v1/files?path=…`: raw bytes both ways, binary-safe (verified with the SDK). */
export function registerFileRoutes(emulator: TensorlakeEmulator): void {
  emulator.server.get('/api/v1/files', async (c) => {
    const { sandbox } = dataPlaneTarget(emulator, c);
    const path = pathParameter(c);
    try {
      const bytes = await sandbox.readFile(path, { maxBytes: MAX_FILE_BYTES });
      return new Response(bytes, { headers: { 'content-type': 'application/octet-stream' } });
    } catch (error) {
      throw fileError(error);
    }
  });

  emulator.server.put('/api/v1/files', async (c) => {
    const { sandbox } = dataPlaneTarget(emulator, c);
    const path = pathParameter(c);
    const bytes = await readBody(c, MAX_FILE_BYTES);
    try {
      // The daemon creates missing parent directories here as the backing provider does: UNCONFIRMED on the service.
      await sandbox.writeFile(path, bytes);
    } catch (error) {
      throw fileError(error);
    }
    return c.json({});
  });
}

function fileError(error: unknown): unknown {
  if (FileNotFoundError.isInstance(error)) return notFound('file');
  if (InvalidPathError.isInstance(error)) return new HttpError(400, error.message);
  return error;
}

import { FileNotFoundError, InvalidStateError, TimeoutError } from '@statebox/core';
import { HttpError, param, readJsonObject } from '@statebox/emulator-kit';
import type { Context } from 'hono';
import { multipartResponse, type Part } from '../multipart.js';
import type { DaytonaServer } from '../server.js';
import { badRequest, type DaytonaState, type SandboxRecord } from '../state.js';

/** The emulator's own cap on one command's captured output (Daytona's daemon documents none). */
const MAX_OUTPUT_BYTES = 512 * 1024 * 1024;

/**
 * The toolbox (the daemon inside each sandbox), reached at `{toolboxProxyUrl}/{sandboxId}/...`: the process
 * and file calls the adapter makes. Every call counts as activity for auto-stop, and a sandbox that is not
 * started answers 400 (Daytona's proxy refuses toolbox traffic for a sandbox that is not running).
 */
export function registerToolboxRoutes(server: DaytonaServer, state: DaytonaState): void {
  const running = (c: Context): SandboxRecord => {
    const record = state.require(param(c, 'id'));
    if (record.state !== 'started' && record.state !== 'forking') {
      throw badRequest(`Sandbox ${record.id} is not running (state: ${record.state}); start it first`);
    }
    state.touch(record);
    return record;
  };

  server.post('/toolbox/:id/process/execute', async (c) => {
    const record = running(c);
    const body = await readJsonObject(c);
    if (typeof body.command !== 'string' || !body.command) throw badRequest('command is required');
    const timeout = typeof body.timeout === 'number' && body.timeout > 0 ? body.timeout : undefined;
    const envs = (body.envs ?? {}) as Record<string, string>;
    try {
      const result = await record.backing.exec(['/bin/sh', '-c', body.command], {
        ...(typeof body.cwd === 'string' && body.cwd ? { cwd: body.cwd } : {}),
        env: envs,
        maxOutputBytes: MAX_OUTPUT_BYTES,
        ...(timeout ? { timeoutMs: timeout * 1000 } : {}),
      });
      // The daemon runs the command with one pipe for both streams; the backing sandbox keeps them apart,
      // so the emulator can only concatenate them (stdout first).
      const combined = Buffer.concat([Buffer.from(result.stdoutBytes), Buffer.from(result.stderrBytes)]);
      return c.json({ exitCode: result.exitCode, result: combined.toString('utf8') });
    } catch (error) {
      if (TimeoutError.isInstance(error)) {
        throw new HttpError(408, `command timed out after ${timeout} seconds`, {
          code: 'PROCESS_EXECUTION_TIMEOUT',
        });
      }
      if (InvalidStateError.isInstance(error)) {
        throw new HttpError(502, `sandbox ${record.id} stopped while the command ran`, {
          code: 'Bad Gateway',
        });
      }
      throw error;
    }
  });

  server.post('/toolbox/:id/files/bulk-upload', async (c) => {
    const record = running(c);
    const form = await c.req.formData();
    const files = new Map<string, { path?: string; file?: Blob }>();
    for (const [name, value] of form.entries()) {
      const match = /^files\[(\d+)\]\.(path|file)$/.exec(name);
      if (!match) throw badRequest(`unexpected form field ${name}`);
      const entry = files.get(match[1]!) ?? {};
      if (match[2] === 'path') entry.path = String(value);
      else if (typeof value !== 'string') entry.file = value;
      files.set(match[1]!, entry);
    }
    for (const [index, entry] of files) {
      if (!entry.path || !entry.file) throw badRequest(`files[${index}] needs both path and file`);
      const bytes = new Uint8Array(await entry.file.arrayBuffer());
      await record.backing.writeFile(entry.path, bytes).catch((error: unknown) => {
        throw badRequest(
          `cannot write ${entry.path}: ${error instanceof Error ? error.message : String(error)}`,
        );
      });
    }
    return c.body(null, 200);
  });

  server.post('/toolbox/:id/files/bulk-download', async (c) => {
    const record = running(c);
    const body = await readJsonObject(c);
    if (!Array.isArray(body.paths)) throw badRequest('paths must be an array');
    const parts: Part[] = [];
    for (const path of body.paths) {
      if (typeof path !== 'string') throw badRequest('paths must be strings');
      try {
        const bytes = await record.backing.readFile(path, { maxBytes: MAX_OUTPUT_BYTES });
        parts.push({ field: 'file', filename: path, contentType: 'application/octet-stream', body: bytes });
      } catch (error) {
        // Daytona reports a per-file failure as an `error` part inside the multipart answer, not as a 404.
        const missing = FileNotFoundError.isInstance(error);
        const message = error instanceof Error ? error.message : String(error);
        parts.push({
          field: 'error',
          filename: path,
          contentType: 'application/json',
          body: Buffer.from(
            JSON.stringify({
              message: missing ? `file not found: ${path}` : message,
              statusCode: missing ? 404 : 400,
              code: missing ? 'FILE_NOT_FOUND' : 'FILE_READ_FAILED',
              source: 'DAYTONA_DAEMON',
            }),
          ),
        });
      }
    }
    return multipartResponse(parts);
  });
}

import { isStateboxError, TimeoutError } from '@statebox/core';
import { HttpError, openEventStream, readJsonObject } from '@statebox/emulator-kit';
import type { TensorlakeEmulator } from '../emulator.js';
import { dataPlaneTarget } from './data-plane.js';

/**
 * `POST /api/v1/processes/run`: starts a process and streams it as server-sent events, one JSON object
 * per `data:` line: `{pid, started_at}`, then `{line, timestamp, stream}` per output line (without its
 * newline), then `{exit_code, signal, oom_killed}`. `timeout` is in seconds. The SDK joins the lines.
 */
export function registerProcessRoutes(emulator: TensorlakeEmulator): void {
  emulator.server.post('/api/v1/processes/run', async (c) => {
    const { record, sandbox } = dataPlaneTarget(emulator, c);
    const body = await readJsonObject(c);
    const command = body.command;
    const args = body.args ?? [];
    const env = body.env ?? {};
    if (typeof command !== 'string' || command.length === 0) throw new HttpError(400, 'command is required');
    if (!Array.isArray(args) || !args.every((arg) => typeof arg === 'string')) {
      throw new HttpError(400, 'args must be an array of strings');
    }
    if (typeof env !== 'object' || env === null || Array.isArray(env)) {
      throw new HttpError(400, 'env must be an object of strings');
    }
    const timeout = typeof body.timeout === 'number' && body.timeout > 0 ? body.timeout : undefined;
    const cwd = typeof body.working_dir === 'string' ? body.working_dir : '/';

    const { stream, response } = openEventStream(c, { openingComment: null });
    record.streams.add(stream);
    stream.onClose(() => record.streams.delete(stream));
    stream.sendJson(undefined, { pid: emulator.nextPid(), started_at: new Date().toISOString() });
    const lines = (name: 'stdout' | 'stderr') => {
      let pending = '';
      return {
        push(text: string) {
          pending += text;
          const parts = pending.split('\n');
          pending = parts.pop() ?? '';
          for (const line of parts) stream.sendJson(undefined, event(line, name));
        },
        flush() {
          if (pending) stream.sendJson(undefined, event(pending, name));
          pending = '';
        },
      };
    };
    const stdout = lines('stdout');
    const stderr = lines('stderr');
    void sandbox
      .exec([command, ...(args as string[])], {
        cwd,
        env: env as Record<string, string>,
        ...(timeout !== undefined && { timeoutMs: Math.ceil(timeout * 1000) }),
        maxOutputBytes: 1024,
        onStdout: (text) => stdout.push(text),
        onStderr: (text) => stderr.push(text),
      })
      .then(
        (result) => {
          stdout.flush();
          stderr.flush();
          stream.sendJson(undefined, { exit_code: result.exitCode, signal: null, oom_killed: false });
          stream.end();
        },
        (error: unknown) => {
          if (TimeoutError.isInstance(error)) {
            stdout.flush();
            stderr.flush();
            stream.sendJson(undefined, { exit_code: null, signal: 9, oom_killed: false });
            stream.end();
            return;
          }
          // The sandbox was suspended, copied (the local provider restarts the source) or deleted under
          // the process: the connection breaks, as it does when a VM stops.
          if (!isStateboxError(error))
            process.stderr.write(`tensorlake emulator: run failed: ${String(error)}\n`);
          stream.drop();
        },
      );
    return response;
  });
}

function event(line: string, stream: 'stdout' | 'stderr'): Record<string, unknown> {
  return { line, timestamp: new Date().toISOString(), stream };
}

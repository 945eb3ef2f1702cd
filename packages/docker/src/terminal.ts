import { InvalidStateError, type TerminalRequest, type TerminalSession } from '@statebox/core';
import { containerName } from './labels.js';
import type { Sandboxes } from './sandboxes.js';

const LOGIN_SHELL = ['/bin/sh', '-c', 'if [ -x /bin/bash ]; then exec /bin/bash -l; fi; exec /bin/sh -l'];

/**
 * An interactive program on a terminal that the Docker daemon allocates inside the container (an exec
 * with `Tty: true`, as `docker exec -it` makes): the sandbox sees only that terminal, and the hijacked
 * connection carries its raw bytes both ways. Closing the connection hangs the terminal up.
 */
export async function openTerminal(
  sandboxes: Sandboxes,
  sandboxId: string,
  request: TerminalRequest,
): Promise<TerminalSession> {
  const operation = 'terminal';
  await sandboxes.locks.idle(sandboxId);
  await sandboxes.starting.get(sandboxId);
  const container = await sandboxes.inspect(sandboxId, operation);
  if (!container.State.Running || container.State.Paused) {
    throw new InvalidStateError(
      sandboxId,
      operation,
      'suspended',
      `Resume it first (statebox resume ${sandboxId}); its files are all there.`,
    );
  }
  const consoleSize = [request.rows, request.columns];
  const { body } = await sandboxes.call(operation, sandboxId, () =>
    sandboxes.client.request<{ Id: string }>('POST', `/containers/${containerName(sandboxId)}/exec`, {
      body: {
        // Daemons before API 1.42 ignore ConsoleSize, and a resize after the start can come too late
        // for a program that asks at once: the terminal gets its size before the program runs.
        Cmd: [
          '/bin/sh',
          '-c',
          'stty rows "$1" cols "$2" 2>/dev/null; shift 2; exec "$@"',
          'statebox-terminal',
          String(request.rows),
          String(request.columns),
          ...(request.command ?? LOGIN_SHELL),
        ],
        Env: Object.entries(request.env ?? {}).map(([key, value]) => `${key}=${value}`),
        WorkingDir: request.cwd,
        AttachStdin: true,
        AttachStdout: true,
        AttachStderr: true,
        Tty: true,
        ConsoleSize: consoleSize,
      },
    }),
  );
  const execId = body.Id;
  const socket = await sandboxes.call(operation, sandboxId, () =>
    sandboxes.client.hijack(`/exec/${execId}/start`, { Detach: false, Tty: true, ConsoleSize: consoleSize }),
  );
  const resize = (columns: number, rows: number) => {
    void sandboxes.client
      .request('POST', `/exec/${execId}/resize`, { query: { h: rows, w: columns } })
      .catch(() => undefined);
  };
  // Also from outside, for an image without stty.
  resize(request.columns, request.rows);
  // Output that arrives before the caller listens (the shell's first prompt) is kept for it.
  const pending: Uint8Array[] = [];
  const listeners: ((chunk: Uint8Array) => void)[] = [];
  socket.on('data', (chunk: Buffer) => {
    if (listeners.length === 0) pending.push(new Uint8Array(chunk));
    for (const listener of listeners) listener(new Uint8Array(chunk));
  });
  const exited = new Promise<number>((resolve) => {
    socket.once('close', () => {
      sandboxes.client
        .request<{ ExitCode: number | null; Running: boolean }>('GET', `/exec/${execId}/json`)
        .then(
          ({ body: state }) => resolve(state.ExitCode ?? 129),
          // The container went away with the session (destroyed): a hang-up.
          () => resolve(129),
        );
    });
  });
  socket.on('error', () => socket.destroy());
  return {
    write: (data) => {
      if (!socket.destroyed) socket.write(data);
    },
    resize,
    onData: (listener) => {
      listeners.push(listener);
      for (const chunk of pending.splice(0)) listener(chunk);
    },
    exited,
    kill: () => socket.destroy(),
  };
}

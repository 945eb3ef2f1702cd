import type { Socket } from 'node:net';
import { ExecCollector, killProcessTree } from '@statebox/adapter-kit';
import { type ExecOutput, type ExecRequest, InvalidStateError } from '@statebox/core';
import { type ExecGroup, killGroup, removeGroup, trackExec } from './cgroups.js';
import { DockerApiError, StreamDemuxer } from './client.js';
import { isNoSuchContainer } from './errors.js';
import { containerName, isPendingStart } from './labels.js';
import type { Sandboxes } from './sandboxes.js';

/**
 * The wrapper every tracked exec starts as: it stops itself before running anything, so that statebox
 * can put it in a cgroup of its own first (cgroups.ts), and then becomes the command.
 */
const TRACKED_WRAPPER = ['/bin/sh', '-c', 'kill -STOP $$ && exec "$@"', 'statebox-exec'];

type ExecJson = { Running: boolean; ExitCode: number | null; Pid: number; ContainerID: string };

type Started = { execId: string; socket: Socket; startedAt: number };

/**
 * Creates and starts an exec, waiting for a fork of this process and settling one of another (or one
 * that died) first, and starting a fork's replacement that is still pending.
 */
async function startExec(
  sandboxes: Sandboxes,
  sandboxId: string,
  operation: string,
  body: { Cmd: string[]; Env?: string[]; WorkingDir?: string; stdin: boolean },
): Promise<Started> {
  await sandboxes.locks.idle(sandboxId);
  await sandboxes.starting.get(sandboxId);
  const create = () =>
    sandboxes.client.request<{ Id: string }>('POST', `/containers/${containerName(sandboxId)}/exec`, {
      body: {
        Cmd: body.Cmd,
        Env: body.Env ?? [],
        WorkingDir: body.WorkingDir,
        AttachStdin: body.stdin,
        AttachStdout: true,
        AttachStderr: true,
        Tty: false,
      },
    });
  let execId: string;
  try {
    try {
      execId = (await create()).body.Id;
    } catch (error) {
      if (!(isNoSuchContainer(error) || (error instanceof DockerApiError && error.status === 409)))
        throw error;
      // Missing, frozen or stopped: a fork (live or dead) or a pending replacement; inspect settles the first two.
      const container = await sandboxes.inspect(sandboxId, operation);
      if (isPendingStart(container)) {
        await sandboxes.start(container.Id, container.HostConfig.NetworkMode, sandboxId, operation);
      } else if (!container.State.Running || container.State.Paused) {
        throw error;
      }
      execId = (await create()).body.Id;
    }
  } catch (error) {
    throw await sandboxes.explain(error, sandboxId, operation);
  }
  const startedAt = Date.now();
  const socket = await sandboxes.call(operation, sandboxId, () =>
    sandboxes.client.hijack(`/exec/${execId}/start`, { Detach: false, Tty: false }),
  );
  return { execId, socket, startedAt };
}

/** Runs a command as `exec` of the spec: streaming, capped output, timeout and abort that end everything. */
export async function execCommand(
  sandboxes: Sandboxes,
  tracking: boolean,
  sandboxId: string,
  request: ExecRequest,
): Promise<ExecOutput> {
  const operation = 'exec';
  const argv =
    typeof request.command === 'string' ? ['/bin/sh', '-c', request.command] : [...request.command];
  request.signal?.throwIfAborted();
  const { execId, socket, startedAt } = await startExec(sandboxes, sandboxId, operation, {
    // Untracked (a daemon on another host): docker-init -s as a subreaper keeps double-forked children in
    // the exec's process tree at least while the command runs.
    Cmd: tracking ? [...TRACKED_WRAPPER, ...argv] : ['/sbin/docker-init', '-s', '--', ...argv],
    Env: Object.entries(request.env ?? {}).map(([key, value]) => `${key}=${value}`),
    WorkingDir: request.cwd,
    stdin: request.stdin !== undefined,
  });

  const pid = waitForPid(sandboxes, execId);
  const group: Promise<ExecGroup | undefined> = tracking
    ? pid.then((value) => (value > 0 ? trackExec(value, `statebox-exec-${execId.slice(0, 16)}`) : undefined))
    : Promise.resolve(undefined);
  const collector = new ExecCollector({
    ...request,
    operation,
    sandboxId,
    stop: async () => {
      const [rootPid, tracked] = await Promise.all([pid, group]);
      if (tracked) await killGroup(tracked);
      // Docker has no "kill this exec" call (closing the connection leaves the command running); the
      // daemon reports host pids, so the tree is found through this host's /proc.
      if (rootPid > 0) await killProcessTree(rootPid);
      // The stream ends once every writer is dead; do not wait on it forever if something escaped.
      setTimeout(() => socket.destroy(), 2000).unref();
    },
  });
  const demuxer = new StreamDemuxer((stream, chunk) => {
    if (stream === 1) collector.pushStdout(chunk);
    else collector.pushStderr(chunk);
  });
  const ended = new Promise<void>((resolve) => {
    socket.on('data', (data: Buffer) => demuxer.push(data));
    socket.on('end', () => resolve());
    socket.on('close', () => resolve());
    socket.on('error', () => resolve());
  });
  if (request.stdin !== undefined) socket.end(request.stdin);
  try {
    await ended;
  } finally {
    collector.disarm();
    socket.destroy();
  }
  const tracked = await group;
  if (tracked) await removeGroup(tracked);
  collector.throwIfStopped();
  const exitCode = await exitCodeOf(sandboxes, execId, sandboxId, startedAt, operation);
  if (exitCode === 126 || exitCode === 127)
    refuseRuntimeFailure(sandboxes, sandboxId, collector.stdout.toBytes());
  return collector.result(exitCode);
}

/**
 * runc reports a process it could not start (no /bin/sh in the image, the sandbox at its pidsLimit) as exit
 * 126 or 127 with its error on stdout: that is statebox's failure, not the command's exit code.
 */
function refuseRuntimeFailure(sandboxes: Sandboxes, sandboxId: string, stdout: Uint8Array): void {
  const text = Buffer.from(stdout).toString('utf8');
  if (!/^OCI runtime exec failed/.test(text)) return;
  throw sandboxes.error(new DockerApiError(500, text.trim(), 'exec'), 'exec', sandboxId);
}

/** Runs a short helper command of statebox's own inside the sandbox and collects its output. */
export async function runInside(
  sandboxes: Sandboxes,
  sandboxId: string,
  operation: string,
  argv: string[],
): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  const { execId, socket, startedAt } = await startExec(sandboxes, sandboxId, operation, {
    Cmd: argv,
    stdin: false,
  });
  const chunks: [Uint8Array[], Uint8Array[]] = [[], []];
  const demuxer = new StreamDemuxer((stream, chunk) => chunks[stream - 1]!.push(chunk));
  await new Promise<void>((resolve) => {
    socket.on('data', (data: Buffer) => demuxer.push(data));
    socket.on('end', () => resolve());
    socket.on('close', () => resolve());
    socket.on('error', () => resolve());
  });
  socket.destroy();
  const exitCode = await exitCodeOf(sandboxes, execId, sandboxId, startedAt, operation);
  const text = (list: Uint8Array[]) => Buffer.concat(list).toString('utf8');
  return { exitCode, stdout: text(chunks[0]), stderr: text(chunks[1]) };
}

/** The host pid of the exec's first process, or 0 when the daemon does not report one. */
async function waitForPid(sandboxes: Sandboxes, execId: string): Promise<number> {
  for (let attempt = 0; attempt < 400; attempt++) {
    const { body } = await sandboxes.client
      .request<ExecJson>('GET', `/exec/${execId}/json`)
      .catch(() => ({ body: undefined }));
    if (!body) return 0;
    if (body.Pid > 0) return body.Pid;
    if (!body.Running && body.ExitCode !== null) return 0;
    await new Promise((resolve) => setTimeout(resolve, attempt < 20 ? 1 : 5));
  }
  return 0;
}

/**
 * The exit code, unless the command did not end by itself: when the container was stopped, replaced or
 * removed while it ran (the daemon then reports 137, 126 with runc's error on stdout, or nothing), the
 * exec rejects with `InvalidStateError` saying what happened.
 */
async function exitCodeOf(
  sandboxes: Sandboxes,
  execId: string,
  sandboxId: string,
  startedAt: number,
  operation: string,
): Promise<number> {
  let exec: ExecJson | undefined;
  // The stream can close a moment before the daemon records the exit code.
  for (let attempt = 0; attempt < 100; attempt++) {
    const response = await sandboxes.client
      .request<ExecJson>('GET', `/exec/${execId}/json`, { accept: [404] })
      .catch((error: unknown) => {
        throw sandboxes.error(error, operation, sandboxId);
      });
    exec = response.status === 404 ? undefined : response.body;
    if (!exec || (!exec.Running && exec.ExitCode !== null)) break;
    await new Promise((resolve) => setTimeout(resolve, attempt < 10 ? 2 : 20));
  }
  const exitCode = exec && !exec.Running ? exec.ExitCode : null;
  if (exitCode !== null && exitCode < 126) return exitCode;
  // The exec can end a moment before the daemon marks its container stopped or removed: look for a while.
  let status: string | undefined;
  for (let attempt = 0; attempt < 25 && !status; attempt++) {
    if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, 20));
    status = await interruption(sandboxes, sandboxId, exec?.ContainerID, startedAt);
  }
  if (status) {
    throw new InvalidStateError(
      sandboxId,
      operation,
      status,
      'The command was killed when that happened, before it finished; run it again once the sandbox is running.',
    );
  }
  return exitCode ?? -1;
}

/** What happened to the container an exec ran in, if it stopped or went away after the exec started. */
async function interruption(
  sandboxes: Sandboxes,
  sandboxId: string,
  containerId: string | undefined,
  startedAt: number,
): Promise<string | undefined> {
  if (!containerId) return 'destroyed or restarted by a fork';
  const current = await sandboxes.client
    .request<{ Id: string }>('GET', `/containers/${containerName(sandboxId)}/json`, { accept: [404] })
    .catch(() => undefined);
  if (current?.status === 200 && current.body.Id !== containerId) return 'restarted by a fork';
  const response = await sandboxes.client
    .request<{ State: { Running: boolean; Paused: boolean; StartedAt: string } }>(
      'GET',
      `/containers/${containerId}/json`,
      { accept: [404] },
    )
    .catch(() => undefined);
  if (!response || response.status === 404) return 'destroyed or restarted by a fork';
  const state = response.body.State;
  if (!state.Running) return 'suspended';
  // Docker's clock and this one are the same host's; allow for its rounding.
  if (Date.parse(state.StartedAt) > startedAt + 5) return 'restarted';
  return undefined;
}

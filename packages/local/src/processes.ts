import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { constants } from 'node:os';
import { type ExecOutput, OutputBuffer, TimeoutError } from '@statebox/core';

export type RunOptions = {
  file: string;
  args: string[];
  env: Record<string, string>;
  stdin?: Uint8Array | undefined;
  timeoutMs?: number | undefined;
  signal?: AbortSignal | undefined;
  maxOutputBytes: number;
  onStdout?: ((chunk: Uint8Array) => void) | undefined;
  onStderr?: ((chunk: Uint8Array) => void) | undefined;
  sandboxId: string;
  operation: string;
  /** Open file descriptors the process gets as fds 3, 4, … */
  extraFds?: number[] | undefined;
  /** Also run on timeout or abort, to end what left the process tree (a cgroup's members). */
  killAlso?: (() => Promise<unknown>) | undefined;
};

/**
 * Runs one process to completion with capped, streamed output. On timeout or abort it kills the whole
 * tree: the process group (every descendant that did not start its own) plus every descendant found
 * through /proc (those that did), collected before the kill so re-parenting cannot hide them.
 */
export function runProcess(options: RunOptions): Promise<ExecOutput> {
  return new Promise((resolve, reject) => {
    if (options.signal?.aborted) {
      reject(options.signal.reason);
      return;
    }
    const child = spawn(options.file, options.args, {
      detached: true,
      stdio: [options.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe', ...(options.extraFds ?? [])],
      env: options.env,
    });
    const stdout = new OutputBuffer(options.maxOutputBytes);
    const stderr = new OutputBuffer(options.maxOutputBytes);
    let ended: 'timeout' | 'abort' | undefined;
    let spawnError: Error | undefined;

    child.stdout!.on('data', (chunk: Buffer) => {
      stdout.push(chunk);
      options.onStdout?.(chunk);
    });
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr.push(chunk);
      options.onStderr?.(chunk);
    });
    if (options.stdin && child.stdin) {
      // EPIPE when the command does not read its input is not an error of ours.
      child.stdin.on('error', () => undefined);
      child.stdin.end(options.stdin);
    }

    const stop = (reason: 'timeout' | 'abort') => {
      if (ended) return;
      ended = reason;
      if (child.pid !== undefined) killTree(child.pid);
      options.killAlso?.().catch(() => undefined);
    };
    const timer =
      options.timeoutMs === undefined ? undefined : setTimeout(() => stop('timeout'), options.timeoutMs);
    const onAbort = () => stop('abort');
    options.signal?.addEventListener('abort', onAbort, { once: true });

    child.on('error', (error) => {
      spawnError = error;
    });
    // After a kill, a process that escaped it (possible only without cgroups) may still hold the output
    // pipes open; the call settles anyway, shortly after the command itself has exited.
    child.on('exit', () => {
      if (!ended) return;
      setTimeout(() => {
        child.stdout?.destroy();
        child.stderr?.destroy();
        child.emit('close', null, 'SIGKILL');
      }, 500).unref();
    });
    let settled = false;
    child.on('close', (code, signal) => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      if (ended === 'abort') {
        reject(options.signal!.reason);
        return;
      }
      if (ended === 'timeout') {
        reject(
          new TimeoutError(options.operation, options.timeoutMs!, {
            sandboxId: options.sandboxId,
            stdout: stdout.toBytes(),
            stderr: stderr.toBytes(),
          }),
        );
        return;
      }
      if (spawnError) {
        reject(spawnError);
        return;
      }
      resolve({
        exitCode: code ?? 128 + signalNumber(signal),
        stdout: stdout.toBytes(),
        stderr: stderr.toBytes(),
        truncated: { stdout: stdout.truncated, stderr: stderr.truncated },
      });
    });
  });
}

function signalNumber(signal: NodeJS.Signals | null): number {
  return (signal && constants.signals[signal]) ?? 1;
}

/** Every descendant of `pid`, found through /proc/<pid>/task/<tid>/children. */
export function descendants(pid: number): number[] {
  const found: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    const current = queue.shift()!;
    let children: string;
    try {
      children = readFileSync(`/proc/${current}/task/${current}/children`, 'utf8');
    } catch {
      continue;
    }
    for (const text of children.trim().split(/\s+/)) {
      const child = Number(text);
      if (Number.isInteger(child) && child > 0) {
        found.push(child);
        queue.push(child);
      }
    }
  }
  return found;
}

export function killTree(pid: number): void {
  const tree = descendants(pid);
  for (const target of [-pid, pid, ...tree]) {
    try {
      process.kill(target, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
}

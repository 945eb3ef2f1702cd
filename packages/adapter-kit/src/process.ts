import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import type { ExecOutput } from '@statebox/core';
import { ExecCollector } from './collect.js';
import { killProcessTree } from './kill-tree.js';

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
 * Runs one host process to completion with capped, streamed output. It leads a process group of its
 * own; on timeout or abort the group and every descendant found through /proc are killed
 * (`killProcessTree`), and the call rejects with `TimeoutError` (with the output so far) or the signal's
 * reason. A non-zero exit is an answer, not an error: a death by signal N reports 128 + N.
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
    const collector = new ExecCollector({
      ...options,
      stop: async () => {
        await Promise.all([
          child.pid === undefined ? undefined : killProcessTree(child.pid, { processGroup: true }),
          options.killAlso?.(),
        ]);
      },
    });
    let spawnError: Error | undefined;

    child.stdout!.on('data', (chunk: Buffer) => collector.pushStdout(chunk));
    child.stderr!.on('data', (chunk: Buffer) => collector.pushStderr(chunk));
    if (options.stdin && child.stdin) {
      // EPIPE when the command does not read its input is not an error of ours.
      child.stdin.on('error', () => undefined);
      child.stdin.end(options.stdin);
    }
    child.on('error', (error) => {
      spawnError = error;
    });
    // After a kill, a process that escaped it (possible only without cgroups) may still hold the output
    // pipes open; the call settles anyway, shortly after the command itself has exited.
    child.on('exit', () => {
      if (!collector.stopped) return;
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
      try {
        collector.disarm();
        collector.throwIfStopped();
        if (spawnError) throw spawnError;
        resolve(collector.result(code ?? 128 + signalNumber(signal)));
      } catch (error) {
        reject(error);
      }
    });
  });
}

function signalNumber(signal: NodeJS.Signals | null): number {
  return (signal && constants.signals[signal]) ?? 1;
}

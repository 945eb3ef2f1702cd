import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { HOST_TOOL_ENV } from './network.js';

/**
 * Serialises the operations that replace or stop a sandbox's container (fork, suspend, resume, destroy,
 * and the repair of what a killed one left), within this process through a promise chain and across
 * processes through `flock(2)` on `<stateDir>/locks/<id>.lock`.
 *
 * Node cannot call flock itself, so each lock is held by a small `flock <file> sh -c 'echo locked; exec cat'` child whose standard
 * input is a pipe from this process. The kernel drops the lock when that child exits, and it exits when
 * the pipe closes: on release, or when this process dies in any way (SIGKILL included). So there is no
 * stale lock to detect or take over, no pid to trust, and no empty lock file to wedge on; the price is one
 * process start (~3 ms) per locked operation, which each takes 100 ms or more anyway.
 */
export class SandboxLocks {
  readonly #directory: string;
  readonly #chains = new Map<string, Promise<unknown>>();
  readonly #waitMs: number;

  constructor(directory: string, waitMs = 5 * 60_000) {
    this.#directory = directory;
    this.#waitMs = waitMs;
  }

  path(sandboxId: string): string {
    return join(this.#directory, `${sandboxId}.lock`);
  }

  /** Resolves when this process has no locked operation on the sandbox running or queued. */
  async idle(sandboxId: string): Promise<void> {
    for (let chain = this.#chains.get(sandboxId); chain; chain = this.#chains.get(sandboxId)) {
      await chain.catch(() => undefined);
    }
  }

  /** Whether this process is inside (or queued for) a locked operation on the sandbox. */
  busy(sandboxId: string): boolean {
    return this.#chains.has(sandboxId);
  }

  async run<T>(sandboxId: string, task: () => Promise<T>): Promise<T> {
    const previous = this.#chains.get(sandboxId) ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(() => this.#withFile(sandboxId, task));
    this.#chains.set(sandboxId, next);
    try {
      return await next;
    } finally {
      if (this.#chains.get(sandboxId) === next) this.#chains.delete(sandboxId);
    }
  }

  /** Removes the lock file of a destroyed sandbox (while holding it: waiters then find it gone). */
  async forget(sandboxId: string): Promise<void> {
    await rm(this.path(sandboxId), { force: true });
  }

  async #withFile<T>(sandboxId: string, task: () => Promise<T>): Promise<T> {
    await mkdir(this.#directory, { recursive: true });
    const holder = await this.#acquire(this.path(sandboxId), sandboxId);
    try {
      return await task();
    } finally {
      await release(holder);
    }
  }

  async #acquire(path: string, sandboxId: string): Promise<ChildProcess> {
    // flock's own --verbose output is block-buffered on a pipe, so the command says when the lock is held.
    const holder = spawn(
      'flock',
      ['-x', '-w', String(this.#waitMs / 1000), path, 'sh', '-c', 'echo locked && exec cat'],
      {
        stdio: ['pipe', 'pipe', 'pipe'],
        env: HOST_TOOL_ENV,
      },
    );
    return await new Promise<ChildProcess>((resolve, reject) => {
      let output = '';
      const onData = (chunk: Buffer) => {
        output += chunk.toString('utf8');
        if (/locked/.test(output)) {
          holder.stdout?.off('data', onData);
          holder.stdout?.resume();
          resolve(holder);
        }
      };
      holder.stdout?.on('data', onData);
      holder.stderr?.on('data', (chunk: Buffer) => {
        output += chunk.toString('utf8');
      });
      holder.on('error', (error) =>
        reject(
          new Error(`cannot run flock(1) to lock sandbox ${sandboxId}: ${error.message}; install util-linux`),
        ),
      );
      holder.on('exit', (code) =>
        reject(
          new Error(
            code === 1
              ? `sandbox ${sandboxId} stayed locked by another operation for ${this.#waitMs} ms`
              : `flock(1) on ${path} failed: ${output.trim() || `exit ${code}`}`,
          ),
        ),
      );
    });
  }
}

async function release(holder: ChildProcess): Promise<void> {
  if (holder.exitCode !== null || holder.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => holder.once('exit', () => resolve()));
  holder.stdin?.end();
  await exited;
}

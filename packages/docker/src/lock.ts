import { mkdir, open, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Serialises the operations that replace a sandbox's container (fork, suspend, resume, destroy), within
 * this process through a promise chain and across processes through an `O_EXCL` lock file next to the
 * layers. A lock whose holder died (its pid is gone) or that is older than `staleMs` is taken over.
 */
export class SandboxLocks {
  readonly #directory: string;
  readonly #chains = new Map<string, Promise<unknown>>();
  readonly #staleMs: number;

  constructor(directory: string, staleMs = 10 * 60_000) {
    this.#directory = directory;
    this.#staleMs = staleMs;
  }

  /** Resolves when this process has no locked operation on the sandbox running or queued. */
  async idle(sandboxId: string): Promise<void> {
    for (let chain = this.#chains.get(sandboxId); chain; chain = this.#chains.get(sandboxId)) {
      await chain.catch(() => undefined);
    }
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

  async #withFile<T>(sandboxId: string, task: () => Promise<T>): Promise<T> {
    await mkdir(this.#directory, { recursive: true });
    const path = join(this.#directory, `${sandboxId}.lock`);
    for (let attempt = 0; ; attempt++) {
      try {
        const handle = await open(path, 'wx');
        await handle.writeFile(String(process.pid));
        await handle.close();
        break;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
        if (await this.#isStale(path)) await rm(path, { force: true });
        else await new Promise((resolve) => setTimeout(resolve, Math.min(5 + attempt * 5, 100)));
      }
    }
    try {
      return await task();
    } finally {
      await rm(path, { force: true });
    }
  }

  async #isStale(path: string): Promise<boolean> {
    try {
      const [content, info] = await Promise.all([readFile(path, 'utf8'), stat(path)]);
      if (Date.now() - info.mtimeMs > this.#staleMs) return true;
      const pid = Number(content);
      if (!Number.isInteger(pid) || pid <= 0) return Date.now() - info.mtimeMs > 1000;
      process.kill(pid, 0);
      return false;
    } catch (error) {
      // ESRCH: the holder is gone. ENOENT: released meanwhile; retrying the open is right either way.
      return (error as NodeJS.ErrnoException).code === 'ESRCH';
    }
  }
}

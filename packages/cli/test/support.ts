import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import pty from '@lydell/node-pty';
import { dockerSkipReason as dockerProbe } from '@statebox/docker/testing';

/** The built CLI, as `statebox` runs it (`pnpm test` builds first). */
export const cli = fileURLToPath(new URL('../dist/index.js', import.meta.url));

export type Run = { code: number; stdout: string; stderr: string; stdoutBytes: Buffer };

/** Runs `statebox ARGS` as a child process with `env`, feeding `stdin` (closed at once when absent). */
export function statebox(args: string[], env: NodeJS.ProcessEnv, stdin?: string | Buffer): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    child.on('error', reject);
    child.on('close', (code) => {
      const stdoutBytes = Buffer.concat(out);
      resolve({
        code: code ?? -1,
        stdout: stdoutBytes.toString('utf8'),
        stderr: Buffer.concat(err).toString(),
        stdoutBytes,
      });
    });
    child.stdin.end(stdin);
  });
}

/**
 * Runs the CLI and records, for each stdout chunk, whether the process had already exited: streamed
 * output arrives while the command still runs.
 */
export function stateboxStreaming(
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ code: number; chunks: { text: string; beforeExit: boolean }[] }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const chunks: { text: string; beforeExit: boolean }[] = [];
    let exited = false;
    child.stdout.on('data', (chunk: Buffer) => chunks.push({ text: chunk.toString(), beforeExit: !exited }));
    child.on('exit', () => {
      exited = true;
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, chunks }));
  });
}

/** The CLI on a pseudo-terminal: what a person at a terminal gets. */
export class TerminalRun {
  readonly #terminal: pty.IPty;
  #output = '';
  readonly exited: Promise<number>;

  constructor(args: string[], env: NodeJS.ProcessEnv, size = { columns: 100, rows: 30 }) {
    this.#terminal = pty.spawn(process.execPath, [cli, ...args], {
      name: 'xterm',
      cols: size.columns,
      rows: size.rows,
      env: env as Record<string, string>,
    });
    this.#terminal.onData((data) => {
      this.#output += data;
    });
    this.exited = new Promise((resolve) => this.#terminal.onExit(({ exitCode }) => resolve(exitCode)));
  }

  get output(): string {
    return this.#output;
  }

  type(text: string): void {
    this.#terminal.write(text);
  }

  resize(columns: number, rows: number): void {
    this.#terminal.resize(columns, rows);
  }

  /** Waits until the output (from `from` on) matches, or fails naming what was seen. */
  async waitFor(pattern: RegExp, from = 0, timeoutMs = 60_000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const match = pattern.exec(this.#output.slice(from));
      if (match) return from + match.index + match[0].length;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(`terminal output never matched ${pattern}; it was:\n${this.#output.slice(from)}`);
  }

  kill(): void {
    this.#terminal.kill();
  }
}

export const DOCKER_IMAGE = 'statebox/debian:bookworm';

/** Why the CLI cannot be tested on Docker here, or false: the Docker adapter's own probe. */
export function dockerSkipReason(): Promise<string | false> {
  return dockerProbe({ image: DOCKER_IMAGE });
}

export function testLabel(): string {
  return `cli-${randomBytes(4).toString('hex')}`;
}

import { spawn } from 'node:child_process';

export type RunResult = { exitCode: number; stdout: Buffer; stderr: string };

/** Runs a host command to completion. Rejects only when it cannot start; the exit code is returned. */
export function run(
  file: string,
  args: readonly string[],
  options: { stdin?: Uint8Array } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: [options.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
    const stdout: Buffer[] = [];
    let stderr = '';
    child.stdout!.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on('error', reject);
    child.on('close', (code, signal) =>
      resolve({ exitCode: code ?? (signal ? 128 : 1), stdout: Buffer.concat(stdout), stderr }),
    );
    if (options.stdin && child.stdin) {
      child.stdin.on('error', () => undefined);
      child.stdin.end(options.stdin);
    }
  });
}

/** Like `run`, but a non-zero exit is an error naming the command. */
export async function runChecked(
  file: string,
  args: readonly string[],
  options: { stdin?: Uint8Array } = {},
): Promise<RunResult> {
  const result = await run(file, args, options);
  if (result.exitCode !== 0) {
    throw new Error(`${file} ${args.join(' ')} exited ${result.exitCode}: ${result.stderr.trim()}`);
  }
  return result;
}

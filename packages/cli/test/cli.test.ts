import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

// The CLI as a user runs it: the bin file, in its own process, on this Node.
const bin = join(import.meta.dirname, '..', 'bin', 'statebox.mjs');
const run = promisify(execFile);
const children: ChildProcess[] = [];

afterAll(() => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGTERM');
});

async function statebox(args: string[], env: Record<string, string> = {}) {
  try {
    const { stdout, stderr } = await run(process.execPath, [bin, ...args], {
      env: { ...process.env, NO_COLOR: '1', ...env },
      timeout: 60_000,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

/** `statebox emulator` in the background; resolves with the variables it says to export. */
async function emulator(): Promise<Record<string, string>> {
  const child = spawn(process.execPath, [bin, 'emulator'], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  let text = '';
  for await (const chunk of child.stdout!) {
    text += String(chunk);
    if ((text.match(/^export /gm) ?? []).length >= 4) break;
  }
  return Object.fromEntries(
    [...text.matchAll(/^export (\w+)=(.*)$/gm)].map((match) => [match[1]!, match[2]!]),
  );
}

describe('statebox CLI', () => {
  it('rejects bad flags and commands with one line and exit code 2', async () => {
    for (const args of [
      ['worker', '--concurrency', 'abc'],
      ['worker', '--concurrency', '0'],
      ['worker', '--bogus'],
      ['bogus'],
    ]) {
      const result = await statebox(args);
      expect(result.code, args.join(' ')).toBe(2);
      expect(result.stderr.trim().split('\n')).toHaveLength(1);
    }
    expect((await statebox(['worker', '--concurrency', 'abc'])).stderr).toContain(
      '--concurrency must be a whole number from 1 to 1024, not "abc"',
    );
  });

  it('the emulator plays the demo transcripts and prints what to export; API errors are one line', async () => {
    const env = await emulator();
    expect(Object.keys(env).sort()).toEqual([
      'ANTHROPIC_API_KEY',
      'ANTHROPIC_BASE_URL',
      'ANTHROPIC_ENVIRONMENT_KEY',
      'STATEBOX_ENVIRONMENT_ID',
    ]);
    const wrongEnvironment = await statebox(['worker'], { ...env, STATEBOX_ENVIRONMENT_ID: 'env_nope' });
    expect(wrongEnvironment.code).toBe(1);
    expect(wrongEnvironment.stderr.trim()).toBe(
      'statebox: not found (404: environment env_nope not found). Check STATEBOX_ENVIRONMENT_ID.',
    );
    const wrongKey = await statebox(['worker'], { ...env, ANTHROPIC_ENVIRONMENT_KEY: 'sk-ant-oat01-wrong' });
    expect(wrongKey.stderr.trim().split('\n')).toHaveLength(1);
    expect(wrongKey.stderr).toContain('the API rejected ANTHROPIC_ENVIRONMENT_KEY (401');
    const wrongApiKey = await statebox(['session', '--continue', 'sesn_x', 'hi'], {
      ...env,
      ANTHROPIC_API_KEY: 'sk-ant-wrong',
    });
    expect(wrongApiKey.stderr).toContain('the API rejected ANTHROPIC_API_KEY (401');
  });
});

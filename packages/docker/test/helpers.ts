import { execFileSync } from 'node:child_process';
import { afterAll, expect } from 'vitest';
import { type DockerProvider, docker } from '../src/index.js';
import { dockerSkipReason, TEST_IMAGE } from '../src/testing.js';

export const skip = await dockerSkipReason();
export const decoder = new TextDecoder();
export const encoder = new TextEncoder();

/**
 * Providers and sandboxes of one test file, destroyed after it. Each file calls `useSandboxes()` once at
 * its top level.
 */
export function useSandboxes(): {
  provider: (options?: Parameters<typeof docker>[0]) => DockerProvider;
  created: string[];
} {
  const providers: DockerProvider[] = [];
  const created: string[] = [];
  afterAll(async () => {
    for (const instance of providers) await instance.close();
    if (skip || created.length === 0) return;
    const cleaner = docker({ image: TEST_IMAGE });
    for (const id of created) await cleaner.destroy(id).catch(() => undefined);
    await cleaner.close();
  });
  return {
    created,
    provider: (options = {}) => {
      const instance = docker({ image: TEST_IMAGE, ...options });
      providers.push(instance);
      return instance;
    },
  };
}

export async function exec(
  instance: DockerProvider,
  sandboxId: string,
  command: string,
  options: { timeoutMs?: number } = {},
): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  const output = await instance.exec(sandboxId, {
    command,
    cwd: '/workspace',
    maxOutputBytes: 1 << 20,
    ...options,
  });
  return {
    exitCode: output.exitCode,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

/** Runs a command that must succeed and returns its stdout. */
export async function run(instance: DockerProvider, sandboxId: string, command: string): Promise<string> {
  const output = await exec(instance, sandboxId, command);
  expect(output.exitCode, `${command}: ${output.stderr}`).toBe(0);
  return output.stdout;
}

// biome-ignore lint/suspicious/noExplicitAny: docker inspect's JSON, read field by field in tests
export function inspect(sandboxId: string): Record<string, any> {
  return JSON.parse(execFileSync('docker', ['inspect', `statebox-${sandboxId}`], { encoding: 'utf8' }))[0];
}

import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Sandbox, Statebox } from '@statebox/core';
import type { SandboxRecord } from '../src/home.js';
import {
  listPids,
  namespaceProcesses,
  pidNamespace,
  processesWithArgument,
  readProcess,
} from '../src/procfs.js';

/** Helpers shared by the crash and concurrency tests: workers, file manifests, stopped processes, leftovers. */

export const packageDir = join(dirname(fileURLToPath(import.meta.url)), '..');
export const fixtures = join(packageDir, 'test', 'fixtures');

/**
 * Where the host has no freezer cgroup (cgroup v2 hosts, or not root), a fork freezes a running
 * source with SIGSTOP. A worker started through this prefix sees no v1 freezer (it is unmounted in a
 * mount namespace of its own), so that path is tested here too.
 */
const withoutFreezer = [
  'unshare',
  '--mount',
  '--propagation',
  'private',
  '--',
  '/bin/sh',
  '-c',
  'umount /sys/fs/cgroup/freezer 2>/dev/null; exec "$0" "$@"',
];

/** Not root: the provider runs rootless, with no cgroups at all, so every fork freezes with SIGSTOP. */
export const rootless = process.getuid?.() !== 0;

export type Worker = {
  child: ChildProcess;
  /** Resolves when the worker printed `go`. */
  go: Promise<void>;
  /** Resolves when it exited, with what it printed after `done`, if it got there. */
  exit: Promise<{ done?: { ms: number; id?: string }; stdout: string; stderr: string; code: number | null }>;
};

/** Starts a Node worker from test/fixtures, the way another orchestrator process would run. */
export function startWorker(script: string, argument: unknown, options: { freezer: boolean }): Worker {
  const node = [process.execPath, join(fixtures, script), JSON.stringify(argument)];
  // Rootless, the provider uses no freezer cgroup anyway (and unprivileged `unshare --mount` is refused).
  const argv = options.freezer || rootless ? node : [...withoutFreezer, ...node];
  const child = spawn(argv[0]!, argv.slice(1), { cwd: packageDir, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let signalGo: () => void = () => undefined;
  const go = new Promise<void>((resolve) => {
    signalGo = resolve;
  });
  child.stdout!.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    if (stdout.includes('go\n')) signalGo();
  });
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exit = new Promise<Awaited<Worker['exit']>>((resolve) => {
    child.on('close', (code) => {
      signalGo();
      const line = stdout.split('\n').find((text) => text.startsWith('done '));
      resolve({ ...(line && { done: JSON.parse(line.slice(5)) }), stdout, stderr, code });
    });
  });
  return { child, go, exit };
}

/** sha256 of every file under /workspace, by path (temporary files of an unfinished writeFile left out). */
export async function manifest(box: Sandbox): Promise<Record<string, string>> {
  const output = await box.exec(
    "find /workspace -type f ! -name '.*.statebox-*' -print0 | sort -z | xargs -0 -r sha256sum",
    { maxOutputBytes: 64 * 1024 * 1024 },
  );
  if (output.exitCode !== 0) throw new Error(`manifest of ${box.id} failed: ${output.stderr}`);
  const files: Record<string, string> = {};
  for (const line of output.stdout.split('\n')) {
    if (!line) continue;
    files[line.slice(66)] = line.slice(0, 64);
  }
  return files;
}

/** Temporary files that a writeFile leaves only while it runs (or if it was killed inside the sandbox). */
export async function writeTemporaries(box: Sandbox): Promise<string[]> {
  const output = await box.exec("find /workspace -name '.*.statebox-*'");
  return output.stdout.split('\n').filter(Boolean);
}

export function records(home: string): SandboxRecord[] {
  const dir = join(home, 'sandboxes');
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((id) => {
    if (!/^sbx?-/.test(id)) return [];
    try {
      return [JSON.parse(readFileSync(join(dir, id, 'sandbox.json'), 'utf8')) as SandboxRecord];
    } catch {
      return [];
    }
  });
}

/**
 * Every process of this home's sandboxes that is stopped (state T), with the host-side processes tied
 * to them (an exec's nsenter), and every freezer cgroup left frozen.
 */
export function stoppedProcesses(home: string): string[] {
  const found: string[] = [];
  for (const record of records(home)) {
    const runtime = record.runtime;
    if (!runtime) continue;
    if (runtime.cgroups && existsSync(runtime.cgroups.freezer)) {
      const state = readFileSync(join(runtime.cgroups.freezer, 'freezer.state'), 'utf8').trim();
      if (state !== 'THAWED') found.push(`${record.id}: freezer cgroup ${state}`);
    }
    if (readProcess(runtime.initPid)?.startTime !== runtime.initStartTime) continue;
    const namespace = pidNamespace(runtime.initPid);
    if (!namespace) continue;
    const { members, waiters } = namespaceProcesses(namespace);
    for (const info of [...members, ...waiters]) {
      if (info.state === 'T') found.push(`${record.id}: ${info.pid} ${info.name} stopped`);
    }
  }
  return found;
}

/** What must not be left once every sandbox of a home is destroyed. */
export function leftovers(home: string): string[] {
  const found: string[] = [];
  for (const entry of readdirSync(join(home, 'sandboxes'))) found.push(`sandboxes/${entry}`);
  for (const entry of readdirSync(join(home, 'layers'))) if (entry !== 'empty') found.push(`layers/${entry}`);
  for (const entry of readdirSync(join(home, 'locks')))
    if (entry !== 'layers.lock') found.push(`locks/${entry}`);
  const own = pidNamespace(process.pid);
  for (const pid of listPids()) {
    if (pid === process.pid || pidNamespace(pid) !== own) continue;
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (argv.includes(`${home}/`) && readProcess(pid)?.state !== 'Z')
        found.push(`process ${pid}: ${argv.replaceAll('\0', ' ').slice(0, 120)}`);
    } catch {
      // Gone.
    }
  }
  return found;
}

/** For a failure message: what the leftover sandboxes hold, and who holds their locks. */
export function explainLeftovers(home: string): string {
  const lines: string[] = [];
  for (const entry of readdirSync(join(home, 'sandboxes'))) {
    const dir = join(home, 'sandboxes', entry);
    let record = '';
    try {
      record = readFileSync(join(dir, 'sandbox.json'), 'utf8').replace(/\s+/g, ' ').slice(0, 400);
    } catch (error) {
      record = (error as Error).message;
    }
    lines.push(`${entry}: [${readdirSync(dir).join(' ')}] ${record}`);
  }
  const locks = readFileSync('/proc/locks', 'utf8');
  for (const entry of readdirSync(join(home, 'locks'))) {
    const inode = statSync(join(home, 'locks', entry)).ino;
    const holders = locks
      .split('\n')
      .filter((line) => line.split(/\s+/)[5]?.endsWith(`:${inode}`))
      .map((line) => {
        const pid = line.split(/\s+/)[4]!;
        const argv = existsSync(`/proc/${pid}/cmdline`)
          ? readFileSync(`/proc/${pid}/cmdline`, 'utf8')
          : 'gone';
        return `${pid} ${argv.replaceAll('\0', ' ').slice(0, 80)}`;
      });
    lines.push(`${entry}: held by ${holders.join(', ') || 'nobody'}`);
  }
  return lines.join('\n');
}

/** Polls `check` until it returns nothing or `timeoutMs` passes; returns its last answer. */
export async function settle(check: () => string[], timeoutMs = 3000): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = check();
    if (found.length === 0 || Date.now() > deadline) return found;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

export async function destroyAll(statebox: Statebox): Promise<void> {
  for (const box of await statebox.list()) await box.destroy();
}

/** Host pids of the supervisors of a sandbox's inits (what `findInits` finds). */
export function supervisors(home: string, sandboxId: string): number[] {
  return processesWithArgument(join(home, 'sandboxes', sandboxId, 'fstab'));
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

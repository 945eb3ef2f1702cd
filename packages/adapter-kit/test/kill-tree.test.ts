import { type ChildProcess, spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { descendants, killProcessTree } from '../src/kill-tree.js';

const started: ChildProcess[] = [];
afterEach(() => {
  for (const child of started.splice(0)) child.kill('SIGKILL');
});

/** Whether `pid` is a live process (a zombie, dead but not yet reaped, counts as gone). */
async function alive(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  if (!stat) return false;
  const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
  return state !== 'Z' && state !== 'X';
}

async function eventually(check: () => Promise<boolean>, what: string): Promise<void> {
  for (let attempt = 0; attempt < 200; attempt++) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`never: ${what}`);
}

/** Runs `sh -c script` in a group of its own; the script prints the pids it started, one a line. */
async function tree(script: string, count: number): Promise<{ root: ChildProcess; pids: number[] }> {
  const root = spawn('sh', ['-c', script], { detached: true, stdio: ['ignore', 'pipe', 'inherit'] });
  started.push(root);
  const pids: number[] = [];
  let text = '';
  await new Promise<void>((resolve, reject) => {
    root.stdout!.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      const lines = text.split('\n').slice(0, -1);
      if (lines.length >= count) {
        pids.push(...lines.map(Number));
        resolve();
      }
    });
    root.on('exit', () => reject(new Error(`the tree's root exited early: ${text}`)));
  });
  return { root, pids };
}

describe('killProcessTree', () => {
  it('kills a root, its children and grandchildren, also ones that left its process group', async () => {
    const { root, pids } = await tree(
      // A grandchild in a new session (setsid) is outside the group but still a descendant.
      "sleep 300 & echo $!; (sleep 301 & echo $!; wait) & setsid sh -c 'sleep 302 & echo $!; wait' & wait",
      3,
    );
    const found = await descendants(root.pid!);
    for (const pid of pids) expect(found).toContain(pid);
    expect(await killProcessTree(root.pid!)).toBe(true);
    for (const pid of [root.pid!, ...pids]) await eventually(async () => !(await alive(pid)), `${pid} dead`);
  });

  it('kills a tree that keeps forking while it is being killed', async () => {
    // Each subshell starts another before it sleeps: without stopping them first, a new child appears
    // between reading the tree and the kill.
    const { root } = await tree('echo $$; f() { sleep 0.01; f & sleep 300; }; f & wait', 1);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const before = await descendants(root.pid!);
    expect(before.length).toBeGreaterThan(3);
    await killProcessTree(root.pid!);
    await eventually(async () => (await Promise.all(before.map(alive))).every((live) => !live), 'all dead');
    await eventually(async () => (await descendants(root.pid!)).length <= 1, 'no descendants left');
  });

  it('with processGroup, also kills a group member whose parent died (re-parented away from the root)', async () => {
    // The middle shell exits at once: its sleep is re-parented to init (or a subreaper), so only the
    // process group still ties it to the root.
    const { root, pids } = await tree("sh -c 'sleep 303 & echo $!'; sleep 300", 1);
    const orphan = pids[0]!;
    await eventually(async () => !(await descendants(root.pid!)).includes(orphan), 'orphan re-parented');
    await killProcessTree(root.pid!, { processGroup: true });
    await eventually(async () => !(await alive(orphan)), 'orphan dead');
    await eventually(async () => !(await alive(root.pid!)), 'root dead');
  });

  it('answers false for a pid that is not there, and refuses pids that would mean everything', async () => {
    const child = spawn('true');
    await new Promise((resolve) => child.on('exit', resolve));
    // Reaped by Node: the pid is free now.
    expect(await killProcessTree(child.pid!)).toBe(false);
    await expect(killProcessTree(0)).rejects.toThrow(RangeError);
    await expect(killProcessTree(1)).rejects.toThrow(RangeError);
    await expect(killProcessTree(-5)).rejects.toThrow(RangeError);
  });
});

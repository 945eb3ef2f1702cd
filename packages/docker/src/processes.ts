import { readdir, readFile } from 'node:fs/promises';

/**
 * Kills a process and all its descendants, given the host pid of its root.
 *
 * Docker has no "kill this exec" call: closing the exec's connection leaves the command running. So the
 * tree is found through the host's /proc (the daemon reports host pids) and stopped with SIGSTOP before
 * SIGKILL, so nothing can fork a child that escapes between reading the tree and killing it.
 * Each exec runs under `docker-init -s` (a subreaper), so even double-forked daemons stay in the tree.
 *
 * Returns false when the pid is not visible here, i.e. the daemon runs on another host.
 */
export async function killProcessTree(rootPid: number): Promise<boolean> {
  if (!(await exists(rootPid))) return false;
  const stopped = new Set<number>();
  for (let pass = 0; pass < 5; pass++) {
    const tree = await descendants(rootPid);
    const fresh = tree.filter((pid) => !stopped.has(pid));
    if (fresh.length === 0 && pass > 0) break;
    for (const pid of fresh) {
      signal(pid, 'SIGSTOP');
      stopped.add(pid);
    }
  }
  for (const pid of stopped) signal(pid, 'SIGKILL');
  return true;
}

async function descendants(rootPid: number): Promise<number[]> {
  const children = new Map<number, number[]>();
  for (const entry of await readdir('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
    // The command name in field 2 may contain spaces and parentheses; fields after the last ')' are fixed.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const parent = Number(fields[1]);
    if (!Number.isInteger(parent)) continue;
    const list = children.get(parent);
    if (list) list.push(pid);
    else children.set(parent, [pid]);
  }
  const result: number[] = [];
  const queue = [rootPid];
  while (queue.length > 0) {
    const pid = queue.shift()!;
    result.push(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return result;
}

async function exists(pid: number): Promise<boolean> {
  try {
    await readFile(`/proc/${pid}/stat`);
    return true;
  } catch {
    return false;
  }
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // Already gone.
  }
}

import { readdir, readFile } from 'node:fs/promises';

export type KillTreeOptions = {
  /**
   * Also signal the process group whose id is `rootPid` (a root spawned with `detached: true` leads one),
   * which reaches a member that is no longer a descendant (its parent died and it was re-parented).
   */
  processGroup?: boolean;
};

/**
 * Kills a process and all its descendants on Linux, given the root's pid as this host sees it.
 *
 * Descendants are found from the parent pid in every `/proc/<pid>/stat` (that also finds children forked
 * by threads other than the main one, which `/proc/<pid>/task/<pid>/children` misses), and each is stopped
 * with SIGSTOP as soon as it is found, over passes until one finds nothing new: a stopped process cannot
 * fork, so nothing escapes between reading the tree and killing it. Then everything gets SIGKILL (which
 * also ends a stopped process). A pid is only signalled while its process is stopped under our watch, so
 * a pid reused by an unrelated process after its owner died is not hit by the second signal unless it was
 * found again as a descendant.
 *
 * Returns false when the root is not visible here (already reaped, or in a daemon on another host).
 */
export async function killProcessTree(rootPid: number, options: KillTreeOptions = {}): Promise<boolean> {
  if (!Number.isInteger(rootPid) || rootPid <= 1) throw new RangeError(`not a killable pid: ${rootPid}`);
  if (options.processGroup) signal(-rootPid, 'SIGSTOP');
  const visible = await exists(rootPid);
  const stopped = new Set<number>();
  if (visible) {
    for (let pass = 0; pass < 8; pass++) {
      const fresh = (await descendants(rootPid)).filter((pid) => !stopped.has(pid));
      if (fresh.length === 0 && pass > 0) break;
      for (const pid of fresh) {
        signal(pid, 'SIGSTOP');
        stopped.add(pid);
      }
    }
  }
  if (options.processGroup) signal(-rootPid, 'SIGKILL');
  for (const pid of stopped) signal(pid, 'SIGKILL');
  return visible;
}

/** `rootPid` and every process below it, parents before children. */
export async function descendants(rootPid: number): Promise<number[]> {
  const children = new Map<number, number[]>();
  const entries = (await readdir('/proc')).filter((entry) => /^\d+$/.test(entry));
  await Promise.all(
    entries.map(async (entry) => {
      const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
      // The command name in field 2 may hold spaces and parentheses; the fields after the last ')' are fixed.
      const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (!Number.isInteger(parent)) return;
      const list = children.get(parent);
      if (list) list.push(Number(entry));
      else children.set(parent, [Number(entry)]);
    }),
  );
  const result: number[] = [];
  const queue = [rootPid];
  for (let pid = queue.shift(); pid !== undefined; pid = queue.shift()) {
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
    // Already gone (or, for a group, none left).
  }
}

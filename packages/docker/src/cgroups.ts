import { mkdir, readdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * One cgroup per exec, so that a timeout or an abort can end everything the command started.
 *
 * A process tree is not enough: `(setsid daemon &)` reparents the daemon to the container's init, out of
 * the tree, and a marker in the environment is lost by `env -i` or by a daemon that rewrites its
 * environment. Cgroup membership is inherited by every child and cannot be left from inside a container
 * (Docker mounts the cgroup filesystem read-only there), so the exec's cgroup holds exactly the processes
 * it started, daemons included. The exec starts as `sh -c 'kill -STOP $$; exec "$@"'`: it stops itself
 * before running anything, statebox moves it into `<container's cgroup>/statebox-exec-<id>` from the host
 * and continues it. A kill freezes that cgroup (freezer v1, `cgroup.freeze` v2), so nothing forks while
 * it is emptied, SIGKILLs every member, thaws it and removes it.
 */
export type ExecGroup = { readonly dir: string; readonly version: 1 | 2 };

type Mount = { root: string; mountPoint: string; fsType: string; superOptions: string };

let mountsCache: Promise<Mount[]> | undefined;

async function cgroupMounts(): Promise<Mount[]> {
  mountsCache ??= readFile('/proc/self/mountinfo', 'utf8').then((text) =>
    text.split('\n').flatMap((line) => {
      const [before, after] = line.split(' - ');
      if (!before || !after) return [];
      const fields = before.split(' ');
      const [fsType, , superOptions] = after.split(' ');
      if (fsType !== 'cgroup' && fsType !== 'cgroup2') return [];
      return [{ root: fields[3]!, mountPoint: fields[4]!, fsType, superOptions: superOptions ?? '' }];
    }),
  );
  return mountsCache;
}

/** The host directory of the cgroup that tracks `pid` (freezer on v1, the unified one on v2). */
async function cgroupOf(pid: number): Promise<ExecGroup | undefined> {
  const lines = (await readFile(`/proc/${pid}/cgroup`, 'utf8')).split('\n');
  const mounts = await cgroupMounts();
  const freezer = lines
    .map((line) => /^\d+:([^:]*):(.*)$/.exec(line))
    .find((match) => match?.[1]?.split(',').includes('freezer'));
  if (freezer) {
    const mount = mounts.find(
      (candidate) => candidate.fsType === 'cgroup' && candidate.superOptions.split(',').includes('freezer'),
    );
    if (mount) return { dir: join(mount.mountPoint, relativeTo(freezer[2]!, mount.root)), version: 1 };
  }
  const unified = lines.map((line) => /^0::(.*)$/.exec(line)).find(Boolean);
  const mount = mounts.find((candidate) => candidate.fsType === 'cgroup2');
  if (unified && mount)
    return { dir: join(mount.mountPoint, relativeTo(unified[1]!, mount.root)), version: 2 };
  return undefined;
}

function relativeTo(path: string, root: string): string {
  return root !== '/' && path.startsWith(root) ? path.slice(root.length) : path;
}

/** Whether the process is stopped (state T), i.e. the exec's wrapper reached its `kill -STOP $$`. */
async function isStopped(pid: number): Promise<boolean | undefined> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  if (stat === undefined) return undefined;
  return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'T';
}

/**
 * Moves the stopped exec wrapper `pid` into a new cgroup of its own and continues it. Returns undefined
 * when the process cannot be tracked (it exited already, or cgroups are not reachable from here); it is
 * continued in every case.
 */
export async function trackExec(pid: number, name: string): Promise<ExecGroup | undefined> {
  try {
    for (let attempt = 0; attempt < 2000; attempt++) {
      const stopped = await isStopped(pid);
      if (stopped === undefined) return undefined;
      if (stopped) break;
      await new Promise((resolve) => setTimeout(resolve, attempt < 20 ? 1 : 5));
    }
    const parent = await cgroupOf(pid);
    if (!parent) return undefined;
    // A container's own cgroup may hold groups of earlier execs whose processes all ended.
    await sweepEmpty(parent.dir);
    const group: ExecGroup = { dir: join(parent.dir, name), version: parent.version };
    // Another exec's sweep may remove the group while it is still empty: make it again.
    for (let attempt = 0; ; attempt++) {
      await mkdir(group.dir).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'EEXIST') throw error;
      });
      try {
        await writeFile(join(group.dir, 'cgroup.procs'), String(pid));
        return group;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || attempt >= 3) throw error;
      }
    }
  } catch {
    return undefined;
  } finally {
    try {
      process.kill(pid, 'SIGCONT');
    } catch {
      // It is gone.
    }
  }
}

/** SIGKILLs every process of the group, with the group frozen so nothing forks meanwhile; then removes it. */
export async function killGroup(group: ExecGroup): Promise<void> {
  const freeze = (frozen: boolean) =>
    group.version === 1
      ? writeFile(join(group.dir, 'freezer.state'), frozen ? 'FROZEN' : 'THAWED')
      : writeFile(join(group.dir, 'cgroup.freeze'), frozen ? '1' : '0');
  try {
    await freeze(true);
    for (let attempt = 0; attempt < 200 && !(await isFrozen(group)); attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    for (let pass = 0; pass < 3; pass++) {
      const pids = await members(group);
      if (pids.length === 0) break;
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // Already gone.
        }
      }
    }
    await freeze(false);
    for (let attempt = 0; attempt < 400 && (await members(group)).length > 0; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  } catch {
    // The container (and with it the group) went away meanwhile: everything in it is dead.
  }
  await removeGroup(group);
}

/** Removes the group if no process is left in it (a background process of the exec keeps it). */
export async function removeGroup(group: ExecGroup): Promise<void> {
  await rmdir(group.dir).catch(() => undefined);
}

async function isFrozen(group: ExecGroup): Promise<boolean> {
  if (group.version === 1)
    return (await readFile(join(group.dir, 'freezer.state'), 'utf8')).trim() === 'FROZEN';
  return /^frozen 1$/m.test(await readFile(join(group.dir, 'cgroup.events'), 'utf8'));
}

async function members(group: ExecGroup): Promise<number[]> {
  const text = await readFile(join(group.dir, 'cgroup.procs'), 'utf8').catch(() => '');
  return text.split('\n').filter(Boolean).map(Number);
}

async function sweepEmpty(dir: string): Promise<void> {
  const entries = await readdir(dir).catch(() => [] as string[]);
  await Promise.all(
    entries
      .filter((entry) => entry.startsWith('statebox-exec-'))
      .map((entry) => rmdir(join(dir, entry)).catch(() => undefined)),
  );
}

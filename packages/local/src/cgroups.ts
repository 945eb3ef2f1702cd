import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, open, readdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Per-sandbox control groups: they bound a sandbox's processes and memory, freeze it for a consistent
 * copy, and find every process an exec started (a `setsid` double fork leaves the process tree, never
 * its cgroup), so a timeout ends them all.
 *
 * Layout (cgroup v1 hierarchies, one per controller, under the cgroup this process was started in):
 *
 *   <pids>/<own>/statebox/<sandbox>.<start>/           pids.max: the sandbox's process limit
 *   <pids>/<own>/statebox/<sandbox>.<start>/x-<exec>/  one per exec: what it started
 *   <freezer>/…/<sandbox>.<start>[/x-<exec>]           the same, to freeze the sandbox or an exec
 *   <memory>/…/<sandbox>.<start>/                      memory.limit_in_bytes
 *
 * A new directory per start (`<start>`), so a resume never waits for the last suspend's processes to
 * leave. Needs root and the v1 pids, memory and freezer controllers (cgroup v2 hosts are not handled yet:
 * limits are then not enforced, and the README says so).
 */

export type Controller = 'pids' | 'memory' | 'freezer';
const controllers: Controller[] = ['pids', 'memory', 'freezer'];

/** Where this process's own cgroup is in each hierarchy; sandboxes' groups are made below it. */
export type CgroupRoots = Record<Controller, string>;

/** A running sandbox's groups: absolute directories, kept in its record so any process can use them. */
export type SandboxCgroups = Record<Controller, string>;

/** Finds the v1 hierarchies, or undefined when they are missing or this process cannot manage them. */
export function detectCgroups(): CgroupRoots | undefined {
  if (process.geteuid?.() !== 0) return undefined;
  let mountinfo: string;
  let own: string;
  try {
    mountinfo = readFileSync('/proc/self/mountinfo', 'utf8');
    own = readFileSync('/proc/self/cgroup', 'utf8');
  } catch {
    return undefined;
  }
  const roots: Partial<CgroupRoots> = {};
  for (const line of mountinfo.split('\n')) {
    const [before, after] = line.split(' - ');
    if (!before || !after) continue;
    const [type, , superOptions] = after.split(' ');
    if (type !== 'cgroup') continue;
    const mountPoint = before.split(' ')[4]!;
    const options = (superOptions ?? '').split(',');
    for (const controller of controllers) {
      if (options.includes(controller) && roots[controller] === undefined) roots[controller] = mountPoint;
    }
  }
  const result: Partial<CgroupRoots> = {};
  for (const controller of controllers) {
    const mountPoint = roots[controller];
    if (!mountPoint) return undefined;
    const entry = own
      .split('\n')
      .map((line) => line.split(':'))
      .find((fields) => fields[1]?.split(',').includes(controller));
    const path = join(mountPoint, entry?.[2] ?? '/', 'statebox');
    result[controller] = path;
  }
  return result as CgroupRoots;
}

/** Makes a sandbox's groups for one start and sets its limits. */
export async function createSandboxCgroups(
  roots: CgroupRoots,
  sandboxId: string,
  limits: { pids: number; memoryBytes: number },
): Promise<SandboxCgroups> {
  const name = `${sandboxId}.${randomBytes(3).toString('hex')}`;
  const groups = {} as SandboxCgroups;
  for (const controller of controllers) {
    groups[controller] = join(roots[controller], name);
    await mkdir(groups[controller], { recursive: true });
  }
  await writeFile(join(groups.pids, 'pids.max'), String(limits.pids));
  await writeFile(join(groups.memory, 'memory.limit_in_bytes'), String(limits.memoryBytes));
  // With swap accounting, memory + swap gets the same bound, so swap is no way around the limit.
  await writeFile(join(groups.memory, 'memory.memsw.limit_in_bytes'), String(limits.memoryBytes)).catch(
    () => undefined,
  );
  return groups;
}

/** Moves a process (the sandbox's init, right after start-up) into every group of the sandbox. */
export async function joinCgroups(groups: SandboxCgroups, pid: number): Promise<void> {
  for (const controller of controllers)
    await writeFile(join(groups[controller], 'cgroup.procs'), String(pid));
}

/**
 * Per-exec groups and the open `cgroup.procs` files an exec's first process inside the sandbox writes
 * its pid to (fds 3, 4, 5 there), before it runs the command: whatever the command starts then stays
 * in them. The files are opened here, by the process that made the groups; the sandbox never sees
 * the cgroup filesystem.
 */
export type ExecCgroups = { pids: string; freezer: string; fds: number[]; close: () => Promise<void> };

export async function createExecCgroups(groups: SandboxCgroups): Promise<ExecCgroups> {
  const name = `x-${randomBytes(4).toString('hex')}`;
  const pids = join(groups.pids, name);
  const freezer = join(groups.freezer, name);
  await mkdir(pids);
  await mkdir(freezer);
  const handles = await Promise.all(
    [join(pids, 'cgroup.procs'), join(freezer, 'cgroup.procs'), join(groups.memory, 'cgroup.procs')].map(
      (path) => open(path, 'w'),
    ),
  );
  return {
    pids,
    freezer,
    fds: handles.map((handle) => handle.fd),
    close: async () => {
      await Promise.all(handles.map((handle) => handle.close().catch(() => undefined)));
    },
  };
}

/** The pids in one group (its own, not its children's). */
export async function cgroupPids(group: string): Promise<number[]> {
  const text = await readFile(join(group, 'cgroup.procs'), 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter(Boolean)
    .map(Number)
    .filter((pid) => Number.isInteger(pid) && pid > 0);
}

async function allPids(group: string): Promise<number[]> {
  const pids = await cgroupPids(group);
  const children = await readdir(group, { withFileTypes: true }).catch(() => []);
  for (const child of children) {
    if (child.isDirectory()) pids.push(...(await allPids(join(group, child.name))));
  }
  return pids;
}

/** Freezes a freezer group and waits until every process in it is frozen. */
export async function freezeCgroup(group: string, timeoutMs = 5000): Promise<boolean> {
  const state = join(group, 'freezer.state');
  await writeFile(state, 'FROZEN');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const current = (await readFile(state, 'utf8').catch(() => 'THAWED')).trim();
    if (current === 'FROZEN') return true;
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

export async function thawCgroup(group: string): Promise<void> {
  await writeFile(join(group, 'freezer.state'), 'THAWED').catch(() => undefined);
}

/** Whether a freezer group is (being) frozen: an operation that froze it was cut short. */
export function isFrozen(group: string): boolean {
  try {
    return readFileSync(join(group, 'freezer.state'), 'utf8').trim() !== 'THAWED';
  } catch {
    return false;
  }
}

/**
 * Ends every process of a group and its children: freeze it (so nothing forks meanwhile), SIGKILL
 * each process, thaw it so the kills land. Repeats until the group is empty or `timeoutMs` passes.
 */
export async function killCgroup(
  groups: { freezer: string; pids: string },
  timeoutMs = 5000,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const frozen = await freezeCgroup(groups.freezer, 1000).catch(() => false);
    const pids = [...new Set([...(await allPids(groups.pids)), ...(await allPids(groups.freezer))])];
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Gone.
      }
    }
    if (frozen) await thawCgroup(groups.freezer);
    if (pids.length === 0) return true;
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Removes an exec's groups once nothing runs in them; leaves them while a background process does. */
export async function removeExecCgroups(exec: { pids: string; freezer: string }): Promise<void> {
  for (const group of [exec.pids, exec.freezer]) await rmdir(group).catch(() => undefined);
}

/**
 * Removes a sandbox's groups, children first, killing what is left in them. Best effort: a group whose
 * last process is still exiting is left for `sweepCgroups`.
 */
export async function removeSandboxCgroups(groups: SandboxCgroups): Promise<void> {
  if (existsSync(groups.freezer) && isFrozen(groups.freezer)) await thawCgroup(groups.freezer);
  for (const controller of controllers) {
    const group = groups[controller];
    const children = await readdir(group, { withFileTypes: true }).catch(() => []);
    for (const child of children) {
      if (child.isDirectory()) await rmdirRetrying(join(group, child.name));
    }
    await rmdirRetrying(group);
  }
}

async function rmdirRetrying(group: string): Promise<void> {
  for (let attempt = 0; attempt < 50; attempt++) {
    try {
      await rmdir(group);
      return;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return;
      if (code !== 'EBUSY') return;
      for (const pid of await cgroupPids(group)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // Gone.
        }
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }
}

/**
 * Removes every group of one sandbox but `keep` (the current start's): those of earlier starts whose
 * last process has gone, or that a killed process left. The caller holds the sandbox's lock, so no
 * other start of it is making groups meanwhile; other sandboxes' groups are never touched.
 */
export async function sweepSandboxCgroups(
  roots: CgroupRoots,
  sandboxId: string,
  keep?: SandboxCgroups,
): Promise<void> {
  for (const controller of controllers) {
    const names = await readdir(roots[controller]).catch(() => [] as string[]);
    for (const name of names) {
      if (!name.startsWith(`${sandboxId}.`)) continue;
      const group = join(roots[controller], name);
      if (keep && group === keep[controller]) continue;
      const children = await readdir(group, { withFileTypes: true }).catch(() => []);
      for (const child of children) {
        if (child.isDirectory()) await rmdir(join(group, child.name)).catch(() => undefined);
      }
      await rmdir(group).catch(() => undefined);
    }
  }
}

import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import type { SandboxCgroups } from './cgroups.js';
import { initVanishedError, startFailedError, stopTimeoutError } from './errors.js';
import { isAlive, processStartTime } from './home.js';
import { HELPER_ENV, type IsolationTools } from './isolation.js';
import { namespaceProcesses, pidNamespace, signalQuietly } from './procfs.js';
import { persistentDirs } from './rootfs.js';

/**
 * A sandbox's init: PID 1 of its namespaces, which mounts the sandbox root and then only waits. Starting
 * it, telling whether it is alive (by pid and start time, against pid reuse), killing it and waiting
 * until the kernel has torn its namespaces and mounts down.
 */

/**
 * The init's set-up, run as PID 1 of the new namespaces: a small tmpfs as the root, the skeleton copied
 * into it, everything mounted with two `mount -a`, the root made read-only, a pivot into it, the host's
 * root dropped; then a reaper that ignores the signals a sandbox process could send it.
 * Arguments: $1 fstab, $2 mount point, $3 layers dir (overlay paths are relative to it), $4 init shell,
 * $5 `isolated` or `shared` network, $6 skeleton.
 */
const setupScript = `set -eu
mount -t tmpfs -o mode=755,size=8m,nosuid,nodev statebox "$2"
cp -a "$6/." "$2/"
cd "$3"
mount -a -T "$1"
cd "$2"
mkdir -p ${persistentDirs.map((dir) => `.sbx/${dir}`).join(' ')}
mount -a -T "$1.binds"
mount -o remount,bind,ro,nosuid,nodev "$2"
pivot_root . .old
umount -l /.old /.sbx
cd /
{ echo sandbox > /proc/sys/kernel/hostname; } 2>/dev/null || hostname sandbox 2>/dev/null || true
if [ "$5" = isolated ] && [ -x /usr/sbin/ip ]; then /usr/sbin/ip link set lo up 2>/dev/null || true; fi
echo ready
exec </dev/null >/dev/null 2>&1
exec "$4" -c 'trap "" TERM INT HUP QUIT USR1 USR2; while :; do sleep 2147483647 & wait $!; done' statebox-init
`;

export type RunningInit = {
  supervisorPid: number;
  initPid: number;
  initStartTime: string;
  /** The control groups of this start (root only): limits, freezing, and finding an exec's processes. */
  cgroups?: SandboxCgroups;
};

/** Starts a sandbox's namespaces and init; resolves once the root is mounted and the init is waiting. */
export async function startInit(
  tools: IsolationTools,
  options: {
    fstabPath: string;
    mountPoint: string;
    layersDir: string;
    skeleton: string;
    network: boolean;
    sandboxId: string;
    /** Replaced by `<home>` in error messages: host paths stay out of what callers see. */
    home: string;
  },
): Promise<RunningInit> {
  const args = [
    ...(tools.rootless ? ['--user', '--map-root-user'] : []),
    '--mount',
    '--propagation',
    'private',
    '--pid',
    '--fork',
    '--kill-child',
    ...(options.network ? [] : ['--net']),
    '--uts',
    '--ipc',
    '--',
    tools.shell,
    '-c',
    setupScript,
    'statebox-setup',
    options.fstabPath,
    options.mountPoint,
    options.layersDir,
    tools.initShell,
    options.network ? 'shared' : 'isolated',
    options.skeleton,
  ];
  const child = spawn(tools.unshare, args, {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: HELPER_ENV,
  });
  const supervisorPid = child.pid;
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const ready = await new Promise<boolean>((resolve) => {
    let stdout = '';
    const timer = setTimeout(() => resolve(false), 15_000);
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      if (stdout.includes('ready\n')) {
        clearTimeout(timer);
        resolve(true);
      }
    });
    child.on('exit', () => {
      clearTimeout(timer);
      resolve(false);
    });
    child.on('error', (error) => {
      stderr += error.message;
      clearTimeout(timer);
      resolve(false);
    });
  });
  if (!ready || supervisorPid === undefined) {
    if (supervisorPid !== undefined) killQuietly(supervisorPid);
    throw startFailedError(options.sandboxId, redactHostPaths(stderr.trim(), options.home));
  }
  child.stdout.destroy();
  child.stderr.destroy();
  child.unref();
  const initPid = Number(
    readFileSync(`/proc/${supervisorPid}/task/${supervisorPid}/children`, 'utf8').trim().split(' ')[0],
  );
  const initStartTime = processStartTime(initPid);
  if (!Number.isInteger(initPid) || initStartTime === null) {
    killQuietly(supervisorPid);
    throw initVanishedError(options.sandboxId);
  }
  return { supervisorPid, initPid, initStartTime };
}

export function initIsAlive(runtime: RunningInit | undefined): boolean {
  return runtime !== undefined && processStartTime(runtime.initPid) === runtime.initStartTime;
}

/**
 * Kills a sandbox's init and with it every process in its PID namespace, and returns at once: after
 * SIGKILL nothing in the sandbox runs again. The kernel then tears the namespace down with its last
 * process, unmounting the overlay; with ~25,000 cached files that took 90-470 ms here, which `suspend`
 * need not wait for. What must not overlap it (a new mount of the same upper, sealing it) calls
 * `waitForExit` first.
 */
export function killInit(runtime: RunningInit): void {
  if (processStartTime(runtime.initPid) !== runtime.initStartTime) return;
  // Every process of the sandbox gets its own SIGKILL now, rather than when the kernel zaps the PID
  // namespace after the init has exited: suspend promises that nothing in the sandbox runs after it.
  const members = sandboxProcesses(runtime);
  killQuietly(runtime.initPid);
  if (isAlive(runtime.supervisorPid)) killQuietly(runtime.supervisorPid);
  for (const pid of members) killQuietly(pid);
}

/** Host pids of every process in the sandbox's PID namespace (the init included). */
function sandboxProcesses(runtime: RunningInit): number[] {
  let namespace: string;
  try {
    namespace = readlinkSync(`/proc/${runtime.initPid}/ns/pid`);
  } catch {
    return [];
  }
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readlinkSync(`/proc/${entry}/ns/pid`) === namespace) pids.push(Number(entry));
    } catch {
      // Gone, or not ours to look at.
    }
  }
  return pids;
}

/**
 * Waits until a killed init has exited, by which time the kernel has released its mounts. Its PID
 * namespace ends only when every process in it has been reaped, and an exec's child there is reaped by
 * its nsenter outside: one left stopped (by a freeze that died, or by hand) would hold the init
 * forever, so stopped waiters are continued meanwhile.
 */
export async function waitForExit(
  runtime: RunningInit,
  context: { sandboxId?: string; operation?: string } = {},
): Promise<void> {
  // Never our own namespace: a supervisor stopped before it forked is waited for here too.
  const found = pidNamespace(runtime.initPid);
  const namespace = found === pidNamespace(process.pid) ? undefined : found;
  const deadline = Date.now() + 5000;
  for (let round = 0; processStartTime(runtime.initPid) === runtime.initStartTime; round++) {
    if (round % 20 === 0 && namespace) {
      for (const waiter of namespaceProcesses(namespace).waiters) {
        if (waiter.state === 'T') signalQuietly(waiter.pid, 'SIGCONT');
      }
    }
    if (Date.now() > deadline) {
      const left = namespace ? namespaceProcesses(namespace) : { members: [], waiters: [] };
      const described = [...left.members, ...left.waiters]
        .slice(0, 8)
        .map((info) => `${info.pid} ${info.name} (state ${info.state})`)
        .join(', ');
      throw stopTimeoutError(context, runtime.initPid, described);
    }
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

/** Kills a sandbox's init and waits until its namespaces and mounts are gone. */
export async function stopInit(
  runtime: RunningInit,
  context: { sandboxId?: string; operation?: string } = {},
): Promise<void> {
  killInit(runtime);
  await waitForExit(runtime, context);
}

function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

/** Replaces the state directory's host path with `<home>`, so error messages do not reveal it. */
export function redactHostPaths(text: string, home: string): string {
  return home.length > 1 ? text.replaceAll(home, '<home>') : text;
}

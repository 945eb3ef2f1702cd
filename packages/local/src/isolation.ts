import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { ProviderError, TransientError } from '@statebox/core';
import { freezeCgroup, type SandboxCgroups, thawCgroup } from './cgroups.js';
import { isAlive, processStartTime } from './home.js';
import { namespaceProcesses, type ProcessInfo, pidNamespace, readProcess, signalQuietly } from './procfs.js';

/**
 * Linux namespace isolation built from util-linux alone (`unshare`, `nsenter`, `mount`, `pivot_root`),
 * because a fresh Debian has no bubblewrap.
 *
 * Each running sandbox is one long-lived namespace set held by a tiny init (PID 1 of its own PID
 * namespace). The init mounts the sandbox root once: the host's `/usr` read-only, a minimal `/etc`, a few
 * device nodes, and the overlay of the sandbox's layers bound at `/workspace`, `/root` and `/tmp`.
 * Every mount lives only in that mount namespace, so when the init dies (suspend, destroy, crash, reboot)
 * the kernel unmounts everything and kills every process in the sandbox; nothing leaks onto the host.
 * Each exec joins the namespaces with `nsenter` (about 3 ms here, against 100 ms for a fresh namespace
 * set with ~45 mount calls; batching them into one `mount -a -T fstab` brought start-up to ~15 ms).
 *
 * Commands run in a user namespace nested under the one that built the mounts: root there keeps file
 * access inside the sandbox but has no capability over the host's mounts and devices, so it cannot
 * remount `/usr` read-write or create device nodes, whether statebox runs as root or not.
 */

export type IsolationTools = {
  unshare: string;
  nsenter: string;
  shell: string;
  /** Shell for the init loop: bash reaps re-parented orphans while waiting, so no zombies pile up. */
  initShell: string;
  /** `env`, which starts each command with exactly the caller's environment (`env -i`). */
  env: string;
  rootless: boolean;
  /**
   * The unprivileged host uid and gid that sandbox commands run as when statebox runs as root (their
   * uid 0 inside is this uid outside). Rootless, commands run as the calling user.
   */
  sandboxUid: number;
  sandboxGid: number;
};

/**
 * The only environment the helpers that build and enter a sandbox (`unshare`, `nsenter`, which run as
 * root when statebox does) ever see. The caller's variables reach the command alone, through `env -i`
 * after every privilege is dropped: an `LD_PRELOAD` (or any other loader or libc variable) never
 * reaches a privileged process.
 */
export const HELPER_ENV: Readonly<Record<string, string>> = Object.freeze({
  PATH: '/usr/sbin:/usr/bin:/sbin:/bin',
  LC_ALL: 'C',
});

/** Default host uid (and gid) of sandbox commands when statebox runs as root. */
export const DEFAULT_SANDBOX_UID = 1_999_990_000;

const searchPath = ['/usr/bin', '/bin', '/usr/sbin', '/sbin', '/usr/local/bin'];

function which(name: string): string | undefined {
  for (const dir of [...searchPath, ...(process.env.PATH ?? '').split(':')]) {
    if (dir && existsSync(join(dir, name))) return join(dir, name);
  }
  return undefined;
}

const probed = new Map<number, IsolationTools>();

/**
 * Finds the tools and checks once per process that namespaces work here; throws a ProviderError saying
 * what to do. `sandboxUid` is the host uid commands run as when this process is root.
 */
export function probeIsolation(sandboxUid = DEFAULT_SANDBOX_UID): IsolationTools {
  const cached = probed.get(sandboxUid);
  if (cached) return cached;
  if (process.platform !== 'linux') {
    throw new ProviderError(
      'local',
      `The local provider isolates sandboxes with Linux namespaces, which ${process.platform} does not have. ` +
        "Use the docker provider instead (STATEBOX_PROVIDER=docker, or { provider: 'docker' }).",
    );
  }
  const missing = ['unshare', 'nsenter', 'mount', 'umount', 'pivot_root', 'env'].filter(
    (tool) => !which(tool),
  );
  if (missing.length > 0) {
    throw new ProviderError(
      'local',
      `The local provider needs ${missing.join(', ')} from util-linux, which ${missing.length > 1 ? 'are' : 'is'} not installed. ` +
        'Install util-linux (apt-get install util-linux / dnf install util-linux).',
    );
  }
  const rootless = process.geteuid?.() !== 0;
  const unshare = which('unshare')!;
  const args = [
    ...(rootless ? ['--user', '--map-root-user'] : []),
    '--mount',
    '--pid',
    '--fork',
    '--net',
    '/bin/true',
  ];
  const result = spawnSync(unshare, args, { encoding: 'utf8', timeout: 10_000, env: HELPER_ENV });
  if (result.status !== 0) {
    const detail = (result.stderr || result.error?.message || `exit ${result.status}`).trim();
    throw new ProviderError(
      'local',
      `Linux namespaces are not available to this process (${unshare} ${args.join(' ')}: ${detail}). ` +
        (rootless
          ? 'Unprivileged user namespaces may be disabled: check `sysctl user.max_user_namespaces` ' +
            '(and kernel.unprivileged_userns_clone or AppArmor restrictions on Ubuntu), or run as root.'
          : 'The kernel or the container this runs in forbids unshare(2); run on a host or a privileged container.'),
    );
  }
  if (!rootless) assertUnusedUid(sandboxUid);
  const bash = which('bash');
  const tools: IsolationTools = {
    unshare,
    nsenter: which('nsenter')!,
    shell: '/bin/sh',
    initShell: bash ?? '/bin/sh',
    env: which('env')!,
    rootless,
    sandboxUid: rootless ? process.geteuid!() : sandboxUid,
    sandboxGid: rootless ? process.getegid!() : sandboxUid,
  };
  probed.set(sandboxUid, tools);
  return tools;
}

/**
 * Sandbox commands run as `sandboxUid` on the host. A host account with that uid could signal, trace
 * or read them, so it must be one no account uses.
 */
function assertUnusedUid(uid: number): void {
  let passwd = '';
  try {
    passwd = readFileSync('/etc/passwd', 'utf8');
  } catch {
    return;
  }
  const owner = passwd
    .split('\n')
    .map((line) => line.split(':'))
    .find((fields) => fields[2] === String(uid) || fields[3] === String(uid));
  if (owner) {
    throw new ProviderError(
      'local',
      `The local provider runs sandbox commands as host uid ${uid}, but the host account '${owner[0]}' uses it, ` +
        'and could then signal or read them. Choose an unused uid with the sandboxUid option (or STATEBOX_LOCAL_UID).',
    );
  }
}

const RUNTIME_VERSION = 'v4';

/**
 * The sandbox directories that live in its layers and so survive suspend and fork. Everything else is
 * the host's, read-only. `/mnt` is there for Managed Agents memory stores (`/mnt/memory/<store>`).
 */
export const persistentDirs = ['workspace', 'root', 'tmp', 'mnt'] as const;

/** Entries of the host's /etc that tools need and that hold no secrets. */
const etcEntries = [
  'ld.so.cache',
  'ld.so.conf',
  'ld.so.conf.d',
  'alternatives',
  'ssl',
  'ca-certificates',
  'ca-certificates.conf',
  'localtime',
  'timezone',
  'bash.bashrc',
  'profile',
  'profile.d',
  'inputrc',
  'nsswitch.conf',
  'mime.types',
  'os-release',
  'debian_version',
  'resolv.conf',
  'protocols',
  'services',
  'gai.conf',
  'magic',
  'mailcap',
];

/** Directories of `/` that are, on merged-/usr systems, symlinks into /usr. */
const rootLinks = ['bin', 'sbin', 'lib', 'lib32', 'lib64', 'libx32'];

export type Runtime = {
  /**
   * The skeleton copied into each sandbox's `/` (a small tmpfs, read-only once mounted): mount points,
   * device node stubs, /bin symlinks and the minimal /etc. Copied rather than bound, so that no host
   * path shows in the sandbox's /proc/self/mountinfo.
   */
  skeleton: string;
  /** The minimal /etc inside the skeleton. */
  etc: string;
  /** Top-level directories that are real directories on this host and need their own bind mount. */
  rootBinds: string[];
};

/**
 * Prepares (once per state directory and version) the skeleton and /etc that every sandbox mounts.
 * Built in a temp dir and renamed into place, so concurrent processes never see half of it.
 */
export function prepareRuntime(runtimeDir: string): Runtime {
  const dir = join(runtimeDir, RUNTIME_VERSION);
  const rootBinds = rootLinks.filter((name) => {
    try {
      return lstatSync(`/${name}`).isDirectory();
    } catch {
      return false;
    }
  });
  const runtime = { skeleton: join(dir, 'root'), etc: join(dir, 'root', 'etc'), rootBinds };
  if (existsSync(join(dir, 'ready'))) return runtime;

  const building = join(runtimeDir, `building-${process.pid}-${randomBytes(4).toString('hex')}`);
  const skeleton = join(building, 'root');
  for (const sub of ['usr', 'etc', 'proc', 'dev', '.sbx', '.old', ...persistentDirs]) {
    mkdirSync(join(skeleton, sub), { recursive: true });
  }
  for (const name of rootLinks) {
    let stat: ReturnType<typeof lstatSync>;
    try {
      stat = lstatSync(`/${name}`);
    } catch {
      continue;
    }
    if (stat.isSymbolicLink()) symlinkSync(readlinkSync(`/${name}`), join(skeleton, name));
    else if (stat.isDirectory()) mkdirSync(join(skeleton, name));
  }
  const dev = join(skeleton, 'dev');
  for (const node of deviceNodes) writeFileSync(join(dev, node), '');
  mkdirSync(join(dev, 'shm'));
  mkdirSync(join(dev, 'pts'));
  symlinkSync('/proc/self/fd', join(dev, 'fd'));
  symlinkSync('/proc/self/fd/0', join(dev, 'stdin'));
  symlinkSync('/proc/self/fd/1', join(dev, 'stdout'));
  symlinkSync('/proc/self/fd/2', join(dev, 'stderr'));

  const etc = join(skeleton, 'etc');
  for (const entry of etcEntries) copyEtcEntry(`/etc/${entry}`, join(etc, entry), entry === 'resolv.conf');
  writeFileSync(
    join(etc, 'passwd'),
    'root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n',
  );
  writeFileSync(join(etc, 'group'), 'root:x:0:\nnogroup:x:65534:\n');
  writeFileSync(join(etc, 'hostname'), 'sandbox\n');
  writeFileSync(
    join(etc, 'hosts'),
    '127.0.0.1\tlocalhost sandbox\n::1\tlocalhost ip6-localhost ip6-loopback\n',
  );
  writeFileSync(join(building, 'ready'), `${new Date().toISOString()}\n`);
  try {
    renameSync(building, dir);
  } catch (error) {
    // Another process won the race; its runtime is identical.
    rmSync(building, { recursive: true, force: true });
    if (!existsSync(join(dir, 'ready'))) throw error;
  }
  return runtime;
}

const deviceNodes = ['null', 'zero', 'full', 'random', 'urandom', 'tty'];

/** Paths under the copied /etc entries that hold secrets and never enter a sandbox. */
const etcSecrets = new Set(['/etc/ssl/private']);

/**
 * Copies one /etc entry, skipping secrets and anything unreadable. (Node's cpSync aborts the whole
 * process, uncatchably, on an unreadable directory such as /etc/ssl/private for a non-root user.)
 */
function copyEtcEntry(source: string, target: string, dereference: boolean): void {
  if (etcSecrets.has(source)) return;
  let stat: ReturnType<typeof lstatSync>;
  try {
    stat = lstatSync(source);
  } catch {
    return;
  }
  try {
    if (stat.isSymbolicLink() && !dereference) {
      symlinkSync(readlinkSync(source), target);
    } else if (stat.isDirectory()) {
      const entries = readdirSync(source);
      mkdirSync(target, { mode: stat.mode & 0o7777 });
      for (const entry of entries) copyEtcEntry(join(source, entry), join(target, entry), false);
    } else if (stat.isFile() || stat.isSymbolicLink()) {
      copyFileSync(source, target);
    }
  } catch {
    // Unreadable: left out rather than failing every sandbox.
  }
}

/** Escapes a path for an fstab field (spaces, tabs, newlines and backslashes are octal escapes there). */
function fstabPath(path: string): string {
  return path.replace(/[\\ \t\n]/g, (char) => `\\${char.charCodeAt(0).toString(8).padStart(3, '0')}`);
}

export type MountPlan = {
  runtime: Runtime;
  /** Where the sandbox root is assembled inside the new mount namespace (an empty dir on the host). */
  mountPoint: string;
  /** Lower layers, top first, as paths relative to `layersDir` (keeps the option string short). */
  lowerLayers: string[];
  layersDir: string;
  /**
   * The upper and work dirs, relative to `layersDir`: overlayfs shows its options in every
   * /proc/<pid>/mountinfo, and relative paths keep the host's directory layout out of the sandbox.
   */
  upper: string;
  work: string;
  /**
   * Mounted inside a user namespace: overlayfs must keep its metadata (opaque dirs, redirects) in
   * `user.overlay.*` xattrs, since `trusted.*` needs real root; without it a rmdir over a lower dir fails with EIO.
   */
  rootless: boolean;
  /**
   * `volatile`: overlayfs skips syncing its upper filesystem. Without it, tearing the overlay down at
   * suspend syncs the whole host filesystem (other sandboxes' dirty pages too): suspend took 124 ms here
   * with nothing of its own to write while another process wrote, 129 ms with 100 MB dirty, against
   * 5-9 ms with `volatile`. The price: fsync inside the sandbox is a no-op.
   */
  durability: 'volatile' | 'fsync';
  /** Size of the sandbox's /dev/shm tmpfs (RAM), in bytes. */
  shmBytes: number;
};

/**
 * The fstabs the init mounts with two `mount -a` calls (two processes instead of ~45): the system and the
 * overlay first, then, after making sure each persistent directory exists in the overlay (layers made
 * before a directory joined `persistentDirs` lack it), the binds of those directories and /proc, with
 * /proc/sys and /proc/sysrq-trigger read-only over it (host-global kernel settings; a sandbox's own
 * network namespace settings are read-only too).
 */
export function buildFstab(plan: MountPlan): { system: string; binds: string } {
  const root = plan.mountPoint;
  const lines: string[] = [];
  const add = (source: string, target: string, type: string, options: string) =>
    lines.push(`${fstabPath(source)} ${fstabPath(target)} ${type} ${options} 0 0`);
  add('/usr', join(root, 'usr'), 'none', 'bind,ro,nosuid,nodev');
  for (const name of plan.runtime.rootBinds)
    add(`/${name}`, join(root, name), 'none', 'bind,ro,nosuid,nodev');
  for (const node of deviceNodes) add(`/dev/${node}`, join(root, 'dev', node), 'none', 'bind,nosuid');
  add('shm', join(root, 'dev/shm'), 'tmpfs', `mode=1777,nosuid,nodev,size=${plan.shmBytes}`);
  const lower = plan.lowerLayers.length > 0 ? plan.lowerLayers.join(':') : 'empty';
  add(
    'overlay',
    join(root, '.sbx'),
    'overlay',
    `lowerdir=${lower},upperdir=${fstabPath(plan.upper)},workdir=${fstabPath(plan.work)}${plan.rootless ? ',userxattr' : ''}${plan.durability === 'volatile' ? ',volatile' : ''}`,
  );
  const system = `${lines.join('\n')}\n`;
  lines.length = 0;
  for (const sub of persistentDirs) add(join(root, '.sbx', sub), join(root, sub), 'none', 'bind');
  add('proc', join(root, 'proc'), 'proc', 'nosuid,nodev,noexec');
  add(join(root, 'proc/sys'), join(root, 'proc/sys'), 'none', 'bind,ro,nosuid,nodev,noexec');
  if (existsSync('/proc/sysrq-trigger'))
    add('/dev/null', join(root, 'proc/sysrq-trigger'), 'none', 'bind,ro');
  return { system, binds: `${lines.join('\n')}\n` };
}

/**
 * What the sandbox's init (pid 1) runs: it only reaps orphans. Under bash it blocks in the \`read\` builtin
 * on a pipe it holds both ends of, so the agent's \`ps\` shows no helper process it could kill (\`pkill
 * sleep\`); a plain sh, which has no process substitution, keeps a sleeper.
 */
const initLoop = `initLoop='trap "" TERM INT HUP QUIT USR1 USR2
if [ -n "\${BASH_VERSION:-}" ] && eval "exec 3<> <(:)" 2>/dev/null; then while :; do read -r -u 3 _; done; fi
while :; do sleep 2147483647 & wait $!; done'`;

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
${initLoop}
exec "$4" -c "$initLoop" statebox-init
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
    throw new ProviderError(
      'local',
      `Could not start sandbox ${options.sandboxId}: ${redactHostPaths(stderr.trim(), options.home) || 'the init exited before it was ready'}. ` +
        'If this persists, check that overlayfs is available (grep overlay /proc/filesystems) and that the ' +
        'state directory is on a local filesystem.',
      { sandboxId: options.sandboxId, operation: 'start' },
    );
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
    throw new ProviderError(
      'local',
      `Sandbox ${options.sandboxId}'s init vanished right after start-up; retry.`,
      {
        sandboxId: options.sandboxId,
      },
    );
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
 * Stops every process of a running sandbox (SIGSTOP) and waits until each one really is stopped, so no
 * write is half done: a process inside a system call stops only when the call returns. Repeats until no
 * new process appeared meanwhile. Returns a function that lets them all continue, or undefined when the
 * sandbox would not hold still within `timeoutMs` (it is then already running again).
 */
export async function freezeSandbox(
  runtime: RunningInit,
  groups?: SandboxCgroups,
  timeoutMs = 2000,
): Promise<(() => void) | undefined> {
  if (groups) {
    // The freezer stops every process of the sandbox at a point where no system call is half done,
    // new ones included (a process joining a frozen group freezes at once), and nothing else.
    const frozen = await freezeCgroup(groups.freezer, timeoutMs).catch(() => false);
    if (!frozen) {
      await thawCgroup(groups.freezer);
      return undefined;
    }
    return () => {
      writeFileSync(join(groups.freezer, 'freezer.state'), 'THAWED');
    };
  }
  const namespace = initIsAlive(runtime) ? pidNamespace(runtime.initPid) : undefined;
  if (!namespace) return undefined;
  const thaw = () => thawSandbox(runtime);
  const stopped = new Set<number>();
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { members, waiters } = namespaceProcesses(namespace);
    // Waiters first, each really stopped before any member stops: an exec's nsenter that sees its
    // child stop while it runs stops itself, and continues the child only once continued itself, so a
    // thaw that reached it before it stopped left it, and the exec, stopped for good.
    const freshWaiters = waiters.filter((waiter) => !stopped.has(waiter.pid));
    for (const waiter of freshWaiters) {
      signalQuietly(waiter.pid, 'SIGSTOP');
      stopped.add(waiter.pid);
    }
    if (freshWaiters.length > 0) {
      if (!(await allStopped(freshWaiters, deadline))) {
        thaw();
        return undefined;
      }
      continue;
    }
    const fresh = members.filter((member) => !stopped.has(member.pid));
    for (const member of fresh) {
      signalQuietly(member.pid, 'SIGSTOP');
      stopped.add(member.pid);
    }
    const running = members.filter((member) => isRunning(member.pid));
    if (fresh.length === 0 && running.length === 0) return thaw;
    if (Date.now() > deadline) {
      thaw();
      return undefined;
    }
    await new Promise((resolve) => setTimeout(resolve, running.length > 0 ? 1 : 0));
  }
}

function isRunning(pid: number): boolean {
  const state = readProcess(pid)?.state;
  return state !== undefined && state !== 'T' && state !== 't' && state !== 'Z' && state !== 'X';
}

async function allStopped(processes: ProcessInfo[], deadline: number): Promise<boolean> {
  while (processes.some((info) => isRunning(info.pid))) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  return true;
}

/**
 * Lets every process of a sandbox run again after a freeze, also one that a crash cut short: thaws its
 * freezer cgroup, then sends SIGCONT to every process in its PID namespace (whatever its state: a
 * SIGSTOP still pending on a process inside a system call is discarded too), then to the host-side
 * processes waiting on them. Members first: an exec's nsenter continued while its child is still
 * stopped would see that stop and stop itself again.
 */
export function thawSandbox(runtime: RunningInit): void {
  if (runtime.cgroups) {
    try {
      writeFileSync(join(runtime.cgroups.freezer, 'freezer.state'), 'THAWED');
    } catch {
      // The group is gone with its sandbox.
    }
  }
  const namespace = initIsAlive(runtime) ? pidNamespace(runtime.initPid) : undefined;
  if (!namespace) return;
  const { members, waiters } = namespaceProcesses(namespace);
  for (const member of members) signalQuietly(member.pid, 'SIGCONT');
  for (const waiter of waiters) signalQuietly(waiter.pid, 'SIGCONT');
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
      throw new TransientError(
        `Sandbox ${context.sandboxId ?? '?'} did not stop within 5 s after SIGKILL` +
          `${context.operation ? ` (during ${context.operation})` : ''}: its init (pid ${runtime.initPid}) ` +
          `waits for ${described || 'processes that are gone now'}. A process in state D is stuck in the ` +
          'kernel (often on a hung filesystem); retry once it has exited.',
        { ...context },
      );
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

/**
 * The argv that runs a command inside a running sandbox, to be spawned with `HELPER_ENV` only.
 *
 * `nsenter` joins the sandbox's namespaces (its network namespace only when it has its own: a shared one
 * is the host's) and, as root, drops to the sandbox's unprivileged host uid; then `unshare` enters a
 * nested user namespace with no mount namespace of its own, where the command is uid 0 for the files
 * inside the sandbox but holds no capability over its mounts, the host's devices or any host-global
 * kernel setting (it cannot remount /usr, unmount a bind, write /proc/sys or create device nodes).
 * Only then does `env -i` give the command the caller's environment: no variable the caller or the
 * sandbox chose (`LD_PRELOAD`, `GCONV_PATH`, `GLIBC_TUNABLES`, ...) ever reaches `nsenter` or `unshare`.
 */
export function enterArgs(
  tools: IsolationTools,
  initPid: number,
  network: boolean,
  environment: Record<string, string>,
): { file: string; args: string[] } {
  return {
    file: tools.nsenter,
    args: [
      '--target',
      String(initPid),
      ...(tools.rootless ? ['--user', '--preserve-credentials'] : []),
      '--mount',
      '--pid',
      ...(network ? [] : ['--net']),
      '--uts',
      '--ipc',
      '--root',
      '--wd',
      ...(tools.rootless ? [] : ['--setuid', String(tools.sandboxUid), '--setgid', String(tools.sandboxGid)]),
      '--',
      tools.unshare,
      '--user',
      '--map-root-user',
      '--',
      tools.env,
      '-i',
      '--',
      ...Object.entries(environment).map(([key, value]) => `${key}=${value}`),
    ],
  };
}

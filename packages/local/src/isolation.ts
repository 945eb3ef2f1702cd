import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { missingToolsError, namespacesUnavailableError, notLinuxError, uidInUseError } from './errors.js';
import { DEFAULT_SANDBOX_UID } from './options.js';

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

const searchPath = ['/usr/bin', '/bin', '/usr/sbin', '/sbin', '/usr/local/bin'];

function which(name: string, toolPath: readonly string[]): string | undefined {
  for (const dir of [...searchPath, ...toolPath]) {
    if (dir && existsSync(join(dir, name))) return join(dir, name);
  }
  return undefined;
}

const probed = new Map<string, IsolationTools>();

/**
 * Finds the tools and checks once per process that namespaces work here; throws a ProviderError saying
 * what to do. `sandboxUid` is the host uid commands run as when this process is root; `toolPath` lists
 * directories searched after the standard ones.
 */
export function probeIsolation(
  sandboxUid = DEFAULT_SANDBOX_UID,
  toolPath: readonly string[] = [],
): IsolationTools {
  const key = `${sandboxUid}:${toolPath.join(':')}`;
  const cached = probed.get(key);
  if (cached) return cached;
  if (process.platform !== 'linux') {
    throw notLinuxError(process.platform);
  }
  const missing = ['unshare', 'nsenter', 'mount', 'umount', 'pivot_root', 'env'].filter(
    (tool) => !which(tool, toolPath),
  );
  if (missing.length > 0) {
    throw missingToolsError(missing);
  }
  const rootless = process.geteuid?.() !== 0;
  const unshare = which('unshare', toolPath)!;
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
    throw namespacesUnavailableError(`${unshare} ${args.join(' ')}`, detail, rootless);
  }
  if (!rootless) assertUnusedUid(sandboxUid);
  const bash = which('bash', toolPath);
  const tools: IsolationTools = {
    unshare,
    nsenter: which('nsenter', toolPath)!,
    shell: '/bin/sh',
    initShell: bash ?? '/bin/sh',
    env: which('env', toolPath)!,
    rootless,
    sandboxUid: rootless ? process.geteuid!() : sandboxUid,
    sandboxGid: rootless ? process.getegid!() : sandboxUid,
  };
  probed.set(key, tools);
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
    throw uidInUseError(uid, owner[0]!);
  }
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

import { randomBytes } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readlinkSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';

/**
 * The root filesystem every sandbox mounts: a skeleton with the host's `/usr` read-only and a minimal
 * `/etc`, prepared once per state directory, and the fstabs that assemble it over the sandbox's layers.
 */

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

import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HELPER_ENV, probeIsolation } from './isolation.js';
import { DEFAULT_SANDBOX_UID } from './options.js';

/**
 * Test helpers of the local provider (`@statebox/local/testing`), shared by its own tests, the runner's
 * and the benchmarks: why local sandboxes cannot run here, checked the way the provider itself checks.
 * Not part of the provider's API.
 */

/** This package's directory (the parent of `src/` and of `dist/`). */
export const packageDir = join(dirname(fileURLToPath(import.meta.url)), '..');

let cached: { reason: string | undefined } | undefined;

/**
 * Why local sandboxes cannot run in this process, or undefined when they can: not Linux, util-linux
 * missing, namespaces forbidden (unprivileged user namespaces disabled, or a container without
 * unshare(2)), or no overlayfs mount in a fresh mount namespace (rootless overlay needs Linux 5.11).
 * The reason is the provider's own error message where it has one.
 */
export function localSkipReason(): string | undefined {
  cached ??= { reason: probe() };
  return cached.reason;
}

function probe(): string | undefined {
  if (process.platform !== 'linux') {
    return `the local provider needs Linux namespaces (this is ${process.platform})`;
  }
  let unshare: string;
  let rootless: boolean;
  try {
    ({ unshare, rootless } = probeIsolation(DEFAULT_SANDBOX_UID, (process.env.PATH ?? '').split(':')));
  } catch (error) {
    return (error as Error).message;
  }
  return overlaySkipReason(unshare, rootless);
}

/** Mounts a one-layer overlay in a throwaway mount (and, rootless, user) namespace, as every start does. */
function overlaySkipReason(unshare: string, rootless: boolean): string | undefined {
  const dir = mkdtempSync(join(tmpdir(), 'statebox-overlay-probe-'));
  try {
    for (const sub of ['lower', 'upper', 'work', 'merged']) mkdirSync(join(dir, sub));
    const options = `lowerdir=lower,upperdir=upper,workdir=work${rootless ? ',userxattr' : ''}`;
    const result = spawnSync(
      unshare,
      [
        ...(rootless ? ['--user', '--map-root-user'] : []),
        '--mount',
        '--propagation',
        'private',
        '/bin/sh',
        '-c',
        `cd "$1" && mount -t overlay overlay -o ${options} merged`,
        'statebox-overlay-probe',
        dir,
      ],
      { encoding: 'utf8', timeout: 10_000, env: HELPER_ENV },
    );
    if (result.status === 0) return undefined;
    const detail = (result.stderr || result.error?.message || `exit ${result.status}`).trim();
    return `overlayfs cannot be mounted here${rootless ? ' by an unprivileged user (needs Linux 5.11 or later)' : ''}: ${detail}`;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The skip reason for a local suite that does not go through the conformance testkit:
 * `localSkipReason()`, unless `STATEBOX_REQUIRE` names `local`; then the suite runs and fails with the
 * provider's own error, as the conformance suite does.
 */
export function localSuiteSkip(requireList = process.env.STATEBOX_REQUIRE ?? ''): string | undefined {
  const required = requireList.split(',').some((name) => name.trim() === 'local');
  return required ? undefined : localSkipReason();
}

/**
 * Why this process cannot run the local provider as an unprivileged user (`nobody`, through `setpriv`)
 * against the built package, or undefined when it can.
 */
export function unprivilegedSkipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'already running unprivileged: the suite itself runs rootless';
  // `nobody` must be able to reach the built packages and the node binary.
  for (const start of [packageDir, dirname(process.execPath)]) {
    for (let dir = start; dir !== '/'; dir = dirname(dir)) {
      if ((statSync(dir).mode & 0o001) === 0) return `${dir} is not traversable by an unprivileged user`;
    }
  }
  return undefined;
}

/** Why the v1 freezer cgroup cannot hold a sandbox still here, or undefined when it can. */
export function freezerSkipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'not root: a rootless provider uses no cgroups';
  const mounted = readFileSync('/proc/self/mountinfo', 'utf8').includes(' /sys/fs/cgroup/freezer ');
  return mounted ? undefined : 'no v1 freezer cgroup mounted at /sys/fs/cgroup/freezer';
}

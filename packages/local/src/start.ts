import { mkdir, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import {
  type CgroupRoots,
  createSandboxCgroups,
  joinCgroups,
  removeSandboxCgroups,
  sweepSandboxCgroups,
} from './cgroups.js';
import { cgroupJoinError } from './errors.js';
import { type Home, removeTree, type SandboxRecord } from './home.js';
import { type RunningInit, startInit, stopInit, waitForExit } from './init.js';
import type { IsolationTools } from './isolation.js';
import { adoptRootOwnedFiles, compactLayers, upperPath, workPath } from './layers.js';
import type { ResolvedLocalOptions } from './options.js';
import { buildFstab, type Runtime } from './rootfs.js';

/** A chain longer than maxLayers whose compaction fails still mounts up to here (~13 bytes of options each). */
const MOUNTABLE_LAYERS = 250;

/** What this host offers, checked once per provider: the tools, the root skeleton and the cgroups (root only). */
export type Setup = { tools: IsolationTools; runtime: Runtime; cgroups: CgroupRoots | undefined };

/**
 * Starts a sandbox's init (compacting a long layer chain first) and records it. The caller holds the
 * sandbox's lock.
 */
export async function startSandbox(
  home: Home,
  setup: Setup,
  options: ResolvedLocalOptions,
  record: SandboxRecord,
): Promise<SandboxRecord> {
  const { tools, runtime, cgroups } = setup;
  let current = record;
  const context = { sandboxId: record.id, operation: 'start' };
  if (current.teardown) {
    // The overlay of the last suspend must be gone before the same upper is mounted again.
    await waitForExit(current.teardown, context);
    if (current.teardown.cgroups) await removeSandboxCgroups(current.teardown.cgroups);
    current = { ...current };
    delete current.teardown;
  }
  if (current.layers.length > options.maxLayers) {
    try {
      current = await compactLayers(home, current, tools);
    } catch (error) {
      // Say a path too long for `cp`: the chain still mounts as it is, up to a point.
      if (current.layers.length > MOUNTABLE_LAYERS) throw error;
    }
  }
  if (current.owner !== tools.sandboxUid && !tools.rootless) {
    // Made when sandbox commands ran as host root: hand their files to the sandbox uid once.
    await adoptRootOwnedFiles(
      [upperPath(home, current), ...current.layers.map((layer) => join(home.layersDir, layer))],
      { uid: tools.sandboxUid, gid: tools.sandboxGid },
    );
    current = { ...current, owner: tools.sandboxUid };
  }
  const sandboxDir = home.sandboxDir(current.id);
  const mountPoint = join(sandboxDir, 'mnt');
  const fstabPath = join(sandboxDir, 'fstab');
  await mkdir(mountPoint, { recursive: true });
  // A crashed mount can leave files in the work dir; overlayfs wants it empty.
  await removeTree(workPath(home, current));
  await mkdir(workPath(home, current));
  const fromLayers = (path: string) => relative(home.layersDir, path);
  const fstab = buildFstab({
    runtime,
    mountPoint,
    lowerLayers: current.layers,
    layersDir: home.layersDir,
    upper: fromLayers(upperPath(home, current)),
    work: fromLayers(workPath(home, current)),
    rootless: tools.rootless,
    durability: options.durability,
    shmBytes: options.limits.shmBytes,
  });
  await writeFile(fstabPath, fstab.system);
  await writeFile(`${fstabPath}.binds`, fstab.binds);
  // From here until the record names the init, a crash leaves an init nobody knows; the intent says so.
  current = { ...current, pendingStart: true };
  await home.write(current);
  // Groups of earlier starts that a crash or a slow teardown left; the lock is ours.
  if (cgroups) await sweepSandboxCgroups(cgroups, current.id);
  const groups = cgroups && (await createSandboxCgroups(cgroups, current.id, options.limits));
  let init: RunningInit;
  try {
    init = await startInit(tools, {
      fstabPath,
      mountPoint,
      layersDir: home.layersDir,
      skeleton: runtime.skeleton,
      network: current.network,
      sandboxId: current.id,
      home: home.root,
    });
  } catch (error) {
    if (groups) await removeSandboxCgroups(groups);
    throw error;
  }
  if (groups) {
    try {
      await joinCgroups(groups, init.initPid);
      // The memory limit's OOM killer should pick a command, not the init that holds the sandbox
      // together (where allowed: it needs CAP_SYS_RESOURCE; a killed init is restarted by the next exec).
      await writeFile(`/proc/${init.initPid}/oom_score_adj`, '-1000').catch(() => undefined);
    } catch (error) {
      await stopInit(init);
      await removeSandboxCgroups(groups);
      throw cgroupJoinError(current.id, error);
    }
    init = { ...init, cgroups: groups };
  }
  const started: SandboxRecord = { ...current, status: 'running', runtime: init };
  delete started.pendingStart;
  try {
    await home.write(started);
  } catch (error) {
    await stopInit(init);
    throw error;
  }
  return started;
}

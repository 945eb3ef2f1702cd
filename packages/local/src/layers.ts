import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, chown, lstat, mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ProviderError } from '@statebox/core';
import { type Home, newLayerId, removeTree, type SandboxRecord, shortReason } from './home.js';
import type { IsolationTools } from './isolation.js';

/**
 * A sandbox's filesystem is an overlay of immutable lower layers (shared between forks) and one writable
 * upper layer of its own. Fork seals the upper (one rename, O(1) in the workspace size) and gives both
 * sides a fresh upper over the same stack, so an in-place write in one branch never reaches the other:
 * overlayfs copies a file up into the writer's own upper first. Hardlink farms cannot promise that.
 */

export function upperPath(home: Home, record: SandboxRecord, name = record.upper): string {
  return join(home.sandboxDir(record.id), name);
}

/** Overlayfs wants its work dir next to the upper dir, empty, on the same filesystem. */
export function workPath(home: Home, record: SandboxRecord, name = record.upper): string {
  return join(home.sandboxDir(record.id), name.replace(/^u-/, 'w-'));
}

export function newUpperName(): string {
  return `u-${randomBytes(4).toString('hex')}`;
}

/** Creates an upper dir and its work dir. A first upper also gets the directories the sandbox mounts. */
export async function createUpper(
  home: Home,
  record: SandboxRecord,
  name: string,
  first: boolean,
  owner?: { uid: number; gid: number },
): Promise<void> {
  const upper = upperPath(home, record, name);
  await mkdir(upper, { recursive: true });
  await mkdir(workPath(home, record, name), { recursive: true });
  if (first) {
    await mkdir(join(upper, 'workspace'), { mode: 0o755 });
    await mkdir(join(upper, 'root'), { mode: 0o700 });
    await mkdir(join(upper, 'tmp'));
    await mkdir(join(upper, 'mnt'));
    // mkdir's mode is filtered by the umask; the sticky bit must be set explicitly.
    await chmod(join(upper, 'tmp'), 0o1777);
    // The sandbox's root is this unprivileged host uid: its own directories must be its own.
    if (owner) {
      for (const dir of persistentDirNames) await chown(join(upper, dir), owner.uid, owner.gid);
    }
  }
}

const persistentDirNames = ['workspace', 'root', 'tmp', 'mnt'];

/**
 * Gives files that sandboxes created as host root (statebox before sandboxes ran as an unprivileged
 * uid) to the sandbox uid, so they stay the sandbox root's own: `chown --from=0:0` touches only those,
 * so it is idempotent and safe on layers that other sandboxes share.
 */
export async function adoptRootOwnedFiles(
  paths: string[],
  owner: { uid: number; gid: number },
): Promise<void> {
  if (paths.length === 0) return;
  await new Promise<void>((resolve, reject) => {
    const child = spawn('chown', ['-hR', '--from=0:0', `${owner.uid}:${owner.gid}`, '--', ...paths], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { PATH: '/usr/bin:/bin' },
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0
        ? resolve()
        : reject(new ProviderError('local', `Could not migrate file ownership: ${stderr.trim()}`)),
    );
  });
}

export async function isEmptyDir(path: string): Promise<boolean> {
  const entries = await readdir(path).catch(() => []);
  return entries.length === 0;
}

/**
 * Seals the upper layer into the shared layer store and gives the record a fresh upper.
 * The intent is written first, so `repairSeal` can finish or undo a seal cut short by a crash.
 * The caller holds the sandbox's lock and the `layers` lock, and the sandbox's init is stopped.
 */
export async function sealUpper(home: Home, record: SandboxRecord): Promise<SandboxRecord> {
  const layerId = newLayerId();
  const to = newUpperName();
  const pending: SandboxRecord = { ...record, pendingSeal: { from: record.upper, layerId, to } };
  await home.write(pending);
  await createUpper(home, pending, to, false);
  await rename(upperPath(home, record), join(home.layersDir, layerId));
  await removeTree(workPath(home, record));
  const sealed: SandboxRecord = { ...record, layers: [layerId, ...record.layers], upper: to };
  delete sealed.pendingSeal;
  await home.write(sealed);
  return sealed;
}

/** Rolls an interrupted seal forward (the rename happened) or back (it did not). */
export async function repairSeal(home: Home, record: SandboxRecord): Promise<SandboxRecord> {
  const pending = record.pendingSeal;
  if (!pending) return record;
  const repaired: SandboxRecord = { ...record };
  delete repaired.pendingSeal;
  if (await home.exists(upperPath(home, record, pending.from))) {
    await removeTree(upperPath(home, record, pending.to));
    await removeTree(workPath(home, record, pending.to));
  } else if (await home.exists(join(home.layersDir, pending.layerId))) {
    await createUpper(home, record, pending.to, false);
    await removeTree(workPath(home, record, pending.from));
    repaired.layers = [pending.layerId, ...record.layers];
    repaired.upper = pending.to;
  } else {
    throw new ProviderError(
      'local',
      `Sandbox ${record.id} was interrupted while sealing a layer and neither its upper layer ` +
        `(${pending.from}) nor the sealed layer (${pending.layerId}) exists. Its files cannot be recovered ` +
        'by statebox; destroy the sandbox.',
      { sandboxId: record.id },
    );
  }
  await home.write(repaired);
  return repaired;
}

/**
 * Deletes layers that no sandbox references, and what dead processes left half built or half deleted.
 * The caller holds the `layers` lock. The layer directory is listed before the records are read: a
 * layer is always referenced by a record (an intent at least) before it appears there, so one listed
 * here and referenced by no record read afterwards is really unused. If any record cannot be read, no
 * layer is deleted: its references are unknown. `heldId` is the sandbox whose lock the caller holds.
 */
export async function collectGarbage(home: Home, heldId?: string): Promise<number> {
  const entries = await readdir(home.layersDir);
  const referenced = new Set<string>(['empty']);
  let complete = true;
  for (const id of await home.ids()) {
    let record: SandboxRecord | undefined;
    try {
      record = await home.read(id);
    } catch {
      complete = false;
      continue;
    }
    if (!record) continue;
    for (const layer of record.layers) referenced.add(layer);
    if (record.liveCopy) referenced.add(record.liveCopy.layerId);
    if (record.pendingSeal) referenced.add(record.pendingSeal.layerId);
    if (record.pendingFork?.layerId) referenced.add(record.pendingFork.layerId);
    if (record.pendingCompact) referenced.add(record.pendingCompact);
  }
  let removed = 0;
  for (const entry of entries) {
    const path = join(home.layersDir, entry);
    if (entry.startsWith('.deleting-')) {
      // Renamed by a collection that held this lock before us and died.
      await removeTree(path);
      continue;
    }
    if (entry.startsWith('.building-')) {
      const owner = buildingOwner(entry);
      if (owner === heldId || (await isAbandoned(home, owner))) {
        await removeTree(path);
        removed++;
      }
      continue;
    }
    if (!complete || referenced.has(entry) || entry.startsWith('.')) continue;
    // Rename first so a half-deleted layer is never mistaken for a whole one.
    const doomed = join(home.layersDir, `.deleting-${entry}-${randomBytes(3).toString('hex')}`);
    await rename(path, doomed).catch(() => undefined);
    await removeTree(doomed);
    removed++;
  }
  return removed;
}

/** A layer built for `owner` (the sandbox whose lock the builder holds) under a temporary name. */
export function buildingPath(home: Home, layerId: string, owner: string): string {
  return join(home.layersDir, `.building-${layerId}-${owner}`);
}

function buildingOwner(entry: string): string {
  return entry.slice('.building-'.length).replace(/^[a-z0-9]+-/, '');
}

/** How long garbage collection waits for a lock before taking its holder for a maker at work. */
export const ABANDONED_WAIT_MS = 250;

/**
 * Whether the maker of something owned by `owner` is gone: the owner's lock is free (its maker held it
 * while at work), or the owner does not exist at all. Removing under that lock is then safe.
 */
export async function isAbandoned(home: Home, owner: string): Promise<boolean> {
  const release = await home.tryLock(owner, ABANDONED_WAIT_MS);
  if (!release) return false;
  await release({ remove: !(await home.exists(home.sandboxDir(owner))) });
  return true;
}

/** Removes the half-built layer of an interrupted fork or compaction, whichever name it reached. */
export async function removeBuilding(home: Home, layerId: string, owner: string): Promise<void> {
  await removeTree(buildingPath(home, layerId, owner));
}

/**
 * Flattens a long layer chain into one layer. Overlayfs allows at most 500 lower layers and about 4 KB
 * of mount options, so deep fork chains are compacted before they reach either. This copies the
 * sandbox's lower view once (O(size)); forks sharing the old layers keep them until they are unused.
 * The new layer is named in the record (`pendingCompact`) before it is built, so garbage collection
 * keeps it and `repairCompact` finishes or drops it after a crash. The caller holds the sandbox's lock.
 */
export async function compactLayers(
  home: Home,
  record: SandboxRecord,
  tools: IsolationTools,
): Promise<SandboxRecord> {
  if (record.layers.length < 2) return record;
  const layerId = newLayerId();
  await home.write({ ...record, pendingCompact: layerId });
  const target = buildingPath(home, layerId, record.id);
  const view = join(home.sandboxDir(record.id), `compact-${layerId}`);
  await mkdir(target);
  await mkdir(view);
  const lower = [...record.layers, 'empty'].join(':');
  const xattr = tools.rootless ? ',userxattr' : '';
  const script = `set -e; cd "$1"; mount -t overlay overlay -o "ro,lowerdir=${lower}${xattr}" "$2"; exec cp -a "$2/." "$3/"`;
  const args = [
    ...(tools.rootless ? ['--user', '--map-root-user'] : []),
    '--mount',
    '--propagation',
    'private',
  ];
  try {
    await runHelper(
      tools.unshare,
      [...args, '--', '/bin/sh', '-c', script, 'statebox-compact', home.layersDir, view, target],
      (reason) => `Compacting the ${record.layers.length} layers of sandbox ${record.id} failed: ${reason}`,
      { sandboxId: record.id, operation: 'compact' },
    );
    await rename(target, join(home.layersDir, layerId));
  } catch (error) {
    await removeTree(target);
    const dropped: SandboxRecord = { ...record };
    delete dropped.pendingCompact;
    await home.write(dropped);
    throw error;
  } finally {
    await rm(view, { recursive: true, force: true });
  }
  const compacted: SandboxRecord = { ...record, layers: [layerId] };
  delete compacted.pendingCompact;
  await home.write(compacted);
  return compacted;
}

/** Finishes a compaction whose layer was complete (renamed into place), or drops it. */
export async function repairCompact(home: Home, record: SandboxRecord): Promise<SandboxRecord> {
  const layerId = record.pendingCompact;
  if (!layerId) return record;
  const repaired: SandboxRecord = { ...record };
  delete repaired.pendingCompact;
  if (await home.exists(join(home.layersDir, layerId))) repaired.layers = [layerId];
  else await removeBuilding(home, layerId, record.id);
  for (const entry of await readdir(home.sandboxDir(record.id)).catch(() => [] as string[])) {
    if (entry.startsWith('compact-')) await removeTree(join(home.sandboxDir(record.id), entry));
  }
  await home.write(repaired);
  return repaired;
}

/** Past these, copying a live upper layer costs more than restarting the source to seal it. */
export const LIVE_COPY_LIMITS = { entries: 4000, bytes: 128 * 1024 * 1024 };

/**
 * Host paths `cp` cannot reach (PATH_MAX is 4096 bytes with its NUL; the copy's own path is a little
 * longer than the upper's). A tree deeper than that is sealed, which is one rename at any depth.
 */
const MAX_COPY_PATH = 3900;

/**
 * Walks a directory tree and returns its fingerprint (entries, bytes, newest change time), or undefined
 * as soon as it goes past the limits, holds a path too long to copy, or cannot be read whole. Equal
 * fingerprints mean an unchanged tree: any write, create, delete or rename moves a change time.
 */
export async function smallTreeFingerprint(
  root: string,
  limits = LIVE_COPY_LIMITS,
): Promise<string | undefined> {
  let entries = 0;
  let bytes = 0;
  let newest = 0n;
  const pending = [root];
  while (pending.length > 0) {
    const directory = pending.pop()!;
    const children = await readdir(directory).catch(() => undefined);
    const info = await stat(directory, { bigint: true }).catch(() => undefined);
    if (!children || !info) return undefined;
    if (info.ctimeNs > newest) newest = info.ctimeNs;
    for (const name of children) {
      if (++entries > limits.entries) return undefined;
      const path = join(directory, name);
      if (path.length > MAX_COPY_PATH) return undefined;
      const child = await lstat(path, { bigint: true }).catch(() => undefined);
      if (!child) return undefined;
      if (child.ctimeNs > newest) newest = child.ctimeNs;
      if (child.isDirectory()) pending.push(path);
      else {
        bytes += Number(child.size);
        if (bytes > limits.bytes) return undefined;
      }
    }
  }
  return `${entries}:${bytes}:${newest}`;
}

/**
 * Copies a (frozen) upper layer into the new sealed layer `layerId` with `cp -a`, which keeps overlayfs'
 * whiteouts (0/0 character devices) and its `trusted.overlay.*` attributes, so the copy means to a fork
 * exactly what the upper means to the source. Built under a temporary name owned by the source (whose
 * lock the caller holds) and renamed into place; on failure nothing is left.
 */
export async function copyUpper(home: Home, record: SandboxRecord, layerId: string): Promise<void> {
  const building = buildingPath(home, layerId, record.id);
  try {
    await runHelper(
      'cp',
      ['-a', '--', upperPath(home, record), building],
      (reason) => `Copying the upper layer of sandbox ${record.id} for a fork failed: ${reason}`,
      { sandboxId: record.id, operation: 'fork' },
    );
    await rename(building, join(home.layersDir, layerId));
  } catch (error) {
    await removeTree(building);
    throw error;
  }
}

/**
 * Runs a helper that works on the state directory. With util-linux `setpriv --pdeathsig`, it dies with
 * the process that started it: a killed caller leaves no `cp` writing into a directory that the next
 * operation is removing.
 */
function runHelper(
  file: string,
  args: string[],
  describe: (reason: string) => string,
  context: { sandboxId: string; operation: string },
): Promise<void> {
  const setpriv = ['/usr/bin/setpriv', '/bin/setpriv'].find((path) => existsSync(path));
  const argv = setpriv ? [setpriv, '--pdeathsig', 'KILL', '--', file, ...args] : [file, ...args];
  return new Promise<void>((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C' },
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      if (stderr.length < 4096) stderr += chunk.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve();
      else reject(new ProviderError('local', describe(shortReason(stderr) || `exit ${code}`), context));
    });
  });
}

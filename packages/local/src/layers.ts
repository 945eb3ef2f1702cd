import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, chown, lstat, mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ProviderError } from '@statebox/core';
import { type Home, newLayerId, removeTree, type SandboxRecord } from './home.js';
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

/** Deletes layers that no sandbox references. The caller holds the `layers` lock. */
export async function collectGarbage(home: Home): Promise<number> {
  const referenced = new Set<string>(['empty']);
  for (const id of await home.ids()) {
    const record = await home.read(id).catch(() => undefined);
    if (!record) continue;
    for (const layer of record.layers) referenced.add(layer);
    if (record.liveCopy) referenced.add(record.liveCopy.layerId);
    if (record.pendingSeal) referenced.add(record.pendingSeal.layerId);
  }
  let removed = 0;
  for (const layer of await readdir(home.layersDir)) {
    if (referenced.has(layer) || layer.startsWith('.')) continue;
    // Rename first so a half-deleted layer is never mistaken for a whole one.
    const doomed = join(home.layersDir, `.deleting-${layer}-${randomBytes(3).toString('hex')}`);
    await rename(join(home.layersDir, layer), doomed).catch(() => undefined);
    await removeTree(doomed);
    removed++;
  }
  return removed;
}

/**
 * Flattens a long layer chain into one layer. Overlayfs allows at most 500 lower layers and about 4 KB
 * of mount options, so deep fork chains are compacted before they reach either. This copies the
 * sandbox's lower view once (O(size)); forks sharing the old layers keep them until they are unused.
 */
export async function compactLayers(
  home: Home,
  record: SandboxRecord,
  tools: IsolationTools,
): Promise<SandboxRecord> {
  if (record.layers.length < 2) return record;
  const layerId = newLayerId();
  const target = join(home.layersDir, `.building-${layerId}`);
  const view = join(home.sandboxDir(record.id), `compact-${layerId}`);
  await mkdir(target);
  await mkdir(view);
  const lower = [...record.layers, 'empty'].join(':');
  const xattr = tools.rootless ? ',userxattr' : '';
  const script = `set -e; cd "$1"; mount -t overlay overlay -o "ro,lowerdir=${lower}${xattr}" "$2"; cp -a "$2/." "$3/"`;
  const args = [
    ...(tools.rootless ? ['--user', '--map-root-user'] : []),
    '--mount',
    '--propagation',
    'private',
  ];
  await new Promise<void>((resolve, reject) => {
    const child = spawn(
      tools.unshare,
      [...args, '--', '/bin/sh', '-c', script, 'statebox-compact', home.layersDir, view, target],
      {
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve();
      else
        reject(
          new ProviderError(
            'local',
            `Compacting the layers of sandbox ${record.id} failed: ${stderr.trim()}`,
          ),
        );
    });
  }).finally(() => rm(view, { recursive: true, force: true }));
  await rename(target, join(home.layersDir, layerId));
  const compacted: SandboxRecord = { ...record, layers: [layerId] };
  await home.write(compacted);
  return compacted;
}

/** Past these, copying a live upper layer costs more than restarting the source to seal it. */
export const LIVE_COPY_LIMITS = { entries: 4000, bytes: 128 * 1024 * 1024 };

/**
 * Walks a directory tree and returns its fingerprint (entries, bytes, newest change time), or undefined
 * as soon as it goes past the limits. Equal fingerprints mean an unchanged tree: any write, create,
 * delete or rename moves a change time.
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
    const children = await readdir(directory).catch(() => [] as string[]);
    const info = await stat(directory, { bigint: true }).catch(() => undefined);
    if (info && info.ctimeNs > newest) newest = info.ctimeNs;
    for (const name of children) {
      if (++entries > limits.entries) return undefined;
      const path = join(directory, name);
      const child = await lstat(path, { bigint: true }).catch(() => undefined);
      if (!child) continue;
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
 * Copies a (frozen) upper layer into a new sealed layer with `cp -a`, which keeps overlayfs' whiteouts
 * (0/0 character devices) and its `trusted.overlay.*` attributes, so the copy means to a fork exactly
 * what the upper means to the source. Built under a temporary name and renamed into place.
 */
export async function copyUpper(home: Home, record: SandboxRecord): Promise<string> {
  const layerId = newLayerId();
  const building = join(home.layersDir, `.building-${layerId}`);
  await new Promise<void>((resolve, reject) => {
    const child = spawn('cp', ['-a', '--', upperPath(home, record), building], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0
        ? resolve()
        : reject(
            new ProviderError(
              'local',
              `Copying the upper layer of sandbox ${record.id} failed: ${stderr.trim()}`,
            ),
          ),
    );
  }).catch(async (error) => {
    await removeTree(building);
    throw error;
  });
  await rename(building, join(home.layersDir, layerId));
  return layerId;
}

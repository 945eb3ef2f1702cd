import { execFile } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { PruneItem, PruneOptions, PruneReport, SandboxUsage } from '@statebox/core';
import { type Home, isValidId, type SandboxRecord } from './home.js';
import { HELPER_ENV } from './isolation.js';
import { ABANDONED_WAIT_MS, collectGarbage } from './layers.js';
import { sweepSandboxes } from './repair.js';

/**
 * `usage` and `prune` of the local provider: what a sandbox holds on disk, and what crashed processes
 * left in the state directory. Removal itself is the provider's own crash repair (`sweepSandboxes`,
 * `collectGarbage`), which works under the same locks as every operation; this module finds and sizes
 * the leftovers first, so a dry run can say what would go and a real run how much went.
 */

/** Disk blocks under each path, as `du` counts them (hard links once per call). */
async function diskBytes(paths: string[]): Promise<number> {
  if (paths.length === 0) return 0;
  const output = await new Promise<string>((resolve) => {
    // Exit status 1 with partial output: an unreadable work dir (rootless); the rest still counts.
    execFile('du', ['-s', '-c', '-B1', '--', ...paths], { env: HELPER_ENV }, (_error, stdout) =>
      resolve(stdout),
    );
  });
  const total = output.trim().split('\n').at(-1)?.split('\t')[0];
  return Number(total) || 0;
}

export async function sandboxUsage(home: Home, record: SandboxRecord): Promise<SandboxUsage> {
  const [ownBytes, sharedBytes] = await Promise.all([
    diskBytes([home.sandboxDir(record.id)]),
    diskBytes(record.layers.map((layer) => join(home.layersDir, layer))),
  ]);
  return { ownBytes, sharedBytes };
}

/** Whether the lock of `owner` is free now (after a short wait), without removing anything. */
async function isFree(home: Home, owner: string): Promise<boolean> {
  const release = await home.tryLock(owner, ABANDONED_WAIT_MS);
  if (!release) return false;
  await release();
  return true;
}

type Candidate = Omit<PruneItem, 'removed'> & { path: string };

/** The leftovers in the state directory, each checked against its maker's lock. */
async function findLeftovers(home: Home): Promise<Candidate[]> {
  const found: Candidate[] = [];
  const layerEntries = await readdir(home.layersDir).catch(() => [] as string[]);
  const sandboxEntries = await readdir(home.sandboxesDir).catch(() => [] as string[]);
  const referenced = new Set<string>(['empty']);
  let complete = true;
  for (const id of sandboxEntries.filter(isValidId)) {
    const record = await home.read(id).catch(() => null);
    if (record === null) complete = false;
    if (!record) continue;
    for (const layer of record.layers) referenced.add(layer);
    for (const layer of [
      record.liveCopy?.layerId,
      record.pendingSeal?.layerId,
      record.pendingFork?.layerId,
      record.pendingCompact,
    ]) {
      if (layer) referenced.add(layer);
    }
    if (record.creating && (await isFree(home, id))) {
      found.push({ kind: 'sandbox', name: id, bytes: 0, reason: 'its create or fork died', path: '' });
    }
  }
  for (const entry of sandboxEntries) {
    const path = join(home.sandboxesDir, entry);
    if (entry.startsWith('.deleted-')) {
      const owner = entry.slice('.deleted-'.length).replace(/-[a-z0-9]+$/, '');
      if (await isFree(home, owner))
        found.push({ kind: 'trash', name: `sandboxes/${entry}`, bytes: 0, reason: 'a destroy died', path });
    } else if (
      isValidId(entry) &&
      !(await home.exists(home.recordPath(entry))) &&
      (await isFree(home, entry))
    ) {
      found.push({ kind: 'sandbox', name: entry, bytes: 0, reason: 'no record: its create died', path });
    }
  }
  for (const entry of layerEntries) {
    const path = join(home.layersDir, entry);
    if (entry.startsWith('.deleting-')) {
      found.push({ kind: 'trash', name: `layers/${entry}`, bytes: 0, reason: 'a clean-up died', path });
    } else if (entry.startsWith('.building-')) {
      const owner = entry.slice('.building-'.length).replace(/^[a-z0-9]+-/, '');
      if (await isFree(home, owner))
        found.push({ kind: 'layer', name: entry, bytes: 0, reason: 'half built by a fork that died', path });
    } else if (complete && !entry.startsWith('.') && !referenced.has(entry)) {
      found.push({ kind: 'layer', name: entry, bytes: 0, reason: 'no sandbox uses it', path });
    }
  }
  for (const entry of await readdir(home.locksDir).catch(() => [] as string[])) {
    const id = entry.replace(/\.lock$/, '');
    if (id === entry || !isValidId(id) || sandboxEntries.includes(id)) continue;
    if (await isFree(home, id)) {
      found.push({
        kind: 'lock',
        name: entry,
        bytes: 0,
        reason: 'its sandbox is gone',
        path: home.lockPath(id),
      });
    }
  }
  for (const item of found) {
    item.path ||= home.sandboxDir(item.name);
    if (item.kind !== 'lock') item.bytes = await diskBytes([item.path]);
  }
  return found;
}

export async function pruneHome(home: Home, options: PruneOptions): Promise<PruneReport> {
  const found = await findLeftovers(home);
  if (options.dryRun) {
    const items = found.map(({ path: _path, ...item }) => ({ ...item, removed: false }));
    return { dryRun: true, items, freedBytes: items.reduce((sum, item) => sum + item.bytes, 0) };
  }
  if (found.length > 0) {
    await sweepSandboxes(home, undefined);
    const release = await home.lock('layers');
    try {
      await collectGarbage(home);
    } finally {
      await release();
    }
  }
  const items: PruneItem[] = [];
  for (const { path, ...item } of found) items.push({ ...item, removed: !(await home.exists(path)) });
  const freedBytes = items.filter((item) => item.removed).reduce((sum, item) => sum + item.bytes, 0);
  return { dryRun: false, items, freedBytes };
}

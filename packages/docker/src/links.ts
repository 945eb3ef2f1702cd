import { execFile } from 'node:child_process';
import type { Stats } from 'node:fs';
import { chmod, chown, link, lstat, mkdir, readdir, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { HOST_TOOL_ENV } from './network.js';

const run = promisify(execFile);

/**
 * Keeps hard links whole when a fork seals a workspace upper layer.
 *
 * Workspace volumes are mounted with overlay's `index=on`: when a name of a hard-linked file in a lower
 * layer is written, the copy-up is recorded in `<workdir>/index` and the file's other names resolve to
 * the same copy, so within one mount the names stay one file. But the index lives in the workdir, which
 * a fork leaves behind: in the sealed layer only the written name is in the upper, and the others would
 * fall through to the old lower copy. So before sealing, every other name of each indexed file is linked
 * into the upper next to the copy, and the sealed layer holds whole groups.
 *
 * It runs on the host, in directories the sandbox filled, while the sandbox is frozen or stopped: it only
 * lstats and readdirs (never follows a symlink), and refuses a parent in the upper that is not a real
 * directory. The merged view is walked only when the index has entries (a hard-linked file was written
 * since the last fork), so forks of sandboxes that did not do that cost one readdir.
 */
export async function completeHardLinks(paths: {
  upper: string;
  workdir: string;
  merged: string;
}): Promise<number> {
  const indexed = await indexedInodes(paths.workdir);
  if (indexed.size === 0) return 0;
  const groups = new Map<number, string[]>();
  await walk(paths.merged, '', (relative, stat) => {
    if (!stat.isFile() || stat.nlink < 2) return;
    const names = groups.get(stat.ino);
    if (names) names.push(relative);
    else groups.set(stat.ino, [relative]);
  });
  let linked = 0;
  for (const names of groups.values()) {
    let anchor: string | undefined;
    const missing: string[] = [];
    for (const name of names) {
      const inUpper = await lstatInside(paths.upper, name);
      if (inUpper === 'unsafe') continue;
      if (inUpper?.isFile() && indexed.has(inUpper.ino)) anchor ??= name;
      else if (!inUpper) missing.push(name);
    }
    if (!anchor) continue;
    for (const name of missing) {
      if (!(await makeParents(paths.upper, paths.merged, name))) continue;
      await link(join(paths.upper, anchor), join(paths.upper, name));
      linked++;
    }
  }
  return linked;
}

/** Upper inodes that overlay's index records (copied-up hard links): empty for most forks. */
export async function indexedInodes(workdir: string): Promise<Set<number>> {
  const indexDirectory = join(workdir, 'index');
  const entries = await readdir(indexDirectory).catch(() => [] as string[]);
  const indexed = new Set<number>();
  for (const entry of entries) {
    const stat = await lstat(join(indexDirectory, entry)).catch(() => undefined);
    if (stat?.isFile()) indexed.add(stat.ino);
  }
  return indexed;
}

async function walk(
  root: string,
  relative: string,
  visit: (relative: string, stat: Stats) => void,
): Promise<void> {
  const entries = await readdir(join(root, relative)).catch(() => [] as string[]);
  for (const entry of entries) {
    const path = relative ? `${relative}/${entry}` : entry;
    const stat = await lstat(join(root, path)).catch(() => undefined);
    if (!stat) continue;
    if (stat.isDirectory()) await walk(root, path, visit);
    else visit(path, stat);
  }
}

/** lstat of `relative` under `root`, undefined when missing, 'unsafe' when a parent is not a real directory. */
async function lstatInside(root: string, relative: string): Promise<Stats | undefined | 'unsafe'> {
  const parts = relative.split('/');
  for (let index = 1; index < parts.length; index++) {
    const parent = await lstat(join(root, ...parts.slice(0, index))).catch(() => undefined);
    if (!parent) return undefined;
    if (!parent.isDirectory()) return 'unsafe';
  }
  return lstat(join(root, relative)).catch(() => undefined);
}

/** Creates the missing parents of `relative` in the upper with the merged view's owner, mode and times. */
async function makeParents(upper: string, merged: string, relative: string): Promise<boolean> {
  const parts = relative.split('/').slice(0, -1);
  for (let index = 1; index <= parts.length; index++) {
    const path = parts.slice(0, index);
    const existing = await lstat(join(upper, ...path)).catch(() => undefined);
    if (existing) {
      if (!existing.isDirectory()) return false;
      continue;
    }
    const source = await lstat(join(merged, ...path)).catch(() => undefined);
    if (!source?.isDirectory()) return false;
    await mkdir(join(upper, ...path));
    await chown(join(upper, ...path), source.uid, source.gid);
    await chmod(join(upper, ...path), source.mode & 0o7777);
    await utimes(join(upper, ...path), source.atime, source.mtime);
  }
  return true;
}

/**
 * Hard-link groups whose every name is in a container's writable layer (its overlay2 upper): the ones a
 * commit puts into an image layer, where Docker's overlay2 (always `index=off`) would split them at the
 * first write.
 */
export async function upperLinkGroups(upper: string): Promise<string[][]> {
  const groups = new Map<number, { nlink: number; names: string[] }>();
  await walk(upper, '', (relative, stat) => {
    if (!stat.isFile() || stat.nlink < 2) return;
    const group = groups.get(stat.ino);
    if (group) group.names.push(relative);
    else groups.set(stat.ino, { nlink: stat.nlink, names: [relative] });
  });
  return [...groups.values()]
    .filter((group) => group.names.length === group.nlink)
    .map((group) => group.names);
}

/**
 * Copies each group once into a new, not yet started container's upper and links its other names there,
 * so that the container starts with the group already copied up, whole: the names share an inode whatever
 * is written through them. Parents get the owner, mode and times they have in `fromUpper`.
 */
export async function seedLinkGroups(groups: string[][], fromUpper: string, toUpper: string): Promise<void> {
  for (const [first, ...rest] of groups) {
    if (!first || !(await makeParents(toUpper, fromUpper, first))) continue;
    if ((await lstatInside(toUpper, first)) !== undefined) continue;
    await run('cp', ['-a', '--', join(fromUpper, first), join(toUpper, first)], { env: HOST_TOOL_ENV });
    for (const name of rest) {
      if (!(await makeParents(toUpper, fromUpper, name))) continue;
      if ((await lstatInside(toUpper, name)) !== undefined) continue;
      await link(join(toUpper, first), join(toUpper, name));
    }
  }
}

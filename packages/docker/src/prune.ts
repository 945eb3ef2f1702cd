import { execFile } from 'node:child_process';
import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { PruneItem, PruneOptions, PruneReport, SandboxUsage } from '@statebox/core';
import {
  type ContainerSummary,
  LABEL,
  PROVIDER,
  parseLayers,
  SANDBOX_ID,
  type VolumeJson,
} from './labels.js';
import { HOST_TOOL_ENV } from './network.js';
import type { Sandboxes } from './sandboxes.js';

/**
 * `usage` and `prune` of the Docker provider. Everything a sandbox holds carries its id in labels
 * (containers, volumes) or in names (`locks/<id>.lock`, `<id>.fork.json`), and every workspace layer
 * is named by the labels of the volumes that use it; what nothing names is what a killed process left.
 * A create makes its layer and overlay work dir before the volume that names them, so those are only
 * taken once they are older than `GRACE_MS`; a sandbox's leftovers are taken under its lock.
 */

/** Far longer than any create takes between making a layer and the volume that names it. */
export const GRACE_MS = 10 * 60_000;

async function diskBytes(paths: string[]): Promise<number> {
  if (paths.length === 0) return 0;
  const output = await new Promise<string>((resolve) => {
    execFile('du', ['-s', '-c', '-B1', '--', ...paths], { env: HOST_TOOL_ENV }, (_error, stdout) =>
      resolve(stdout),
    );
  });
  return Number(output.trim().split('\n').at(-1)?.split('\t')[0]) || 0;
}

type VolumeDetails = VolumeJson & { CreatedAt?: string };

async function statebox(sandboxes: Sandboxes, operation: string) {
  const filters = JSON.stringify({ label: [`${LABEL.provider}=${PROVIDER}`] });
  const [{ body: containers }, { body: volumes }] = await Promise.all([
    sandboxes.call(operation, undefined, () =>
      sandboxes.client.request<ContainerSummary[]>('GET', '/containers/json', { query: { all: 1, filters } }),
    ),
    sandboxes.call(operation, undefined, () =>
      sandboxes.client.request<{ Volumes: VolumeDetails[] | null }>('GET', '/volumes', {
        query: { filters },
      }),
    ),
  ]);
  return { containers, volumes: volumes.Volumes ?? [] };
}

/** Own: the sandbox's upper layers (one per volume of its). Shared: the sealed layers below them. */
export async function sandboxUsage(sandboxes: Sandboxes, sandboxId: string): Promise<SandboxUsage> {
  await sandboxes.inspect(sandboxId, 'usage');
  const { body } = await sandboxes.call('usage', sandboxId, () =>
    sandboxes.client.request<{ Volumes: VolumeJson[] | null }>('GET', '/volumes', {
      query: { filters: JSON.stringify({ label: [`${LABEL.id}=${sandboxId}`] }) },
    }),
  );
  const own = new Set<string>();
  const shared = new Set<string>();
  for (const volume of body.Volumes ?? []) {
    const [upper, ...lowers] = parseLayers(volume.Labels);
    if (upper) own.add(upper);
    for (const layer of lowers) if (layer !== sandboxes.layers.emptyLayer) shared.add(layer);
  }
  const path = (layer: string) => sandboxes.layers.layerPath(layer);
  const [ownBytes, sharedBytes] = await Promise.all([
    diskBytes([...own].map(path)),
    diskBytes([...shared].filter((layer) => !own.has(layer)).map(path)),
  ]);
  return { ownBytes, sharedBytes };
}

type Candidate = Omit<PruneItem, 'removed'> & { remove: () => Promise<void>; gone: () => Promise<boolean> };

const olderThanGrace = async (path: string) => {
  const info = await stat(path).catch(() => undefined);
  return info !== undefined && Date.now() - info.mtimeMs > GRACE_MS;
};
const missing = (path: string) =>
  stat(path).then(
    () => false,
    () => true,
  );

async function findLeftovers(sandboxes: Sandboxes): Promise<Candidate[]> {
  const operation = 'prune';
  const stateDir = sandboxes.options.stateDir;
  const locksDir = join(stateDir, 'locks');
  // Listed before the daemon is asked: a layer or volume made after this listing is not looked at.
  const layerEntries = await readdir(join(stateDir, 'l')).catch(() => [] as string[]);
  const workEntries = await readdir(join(stateDir, 'w')).catch(() => [] as string[]);
  const lockEntries = await readdir(locksDir).catch(() => [] as string[]);
  const { containers, volumes } = await statebox(sandboxes, operation);
  const named = new Set<string>([sandboxes.layers.emptyLayer]);
  for (const volume of volumes) for (const layer of parseLayers(volume.Labels)) named.add(layer);
  const idsWithContainer = new Set(containers.map((container) => container.Labels[LABEL.id] ?? ''));
  const idsInUse = new Set([
    ...idsWithContainer,
    ...volumes.map((volume) => volume.Labels?.[LABEL.id] ?? ''),
  ]);
  const found: Candidate[] = [];

  // Journals of forks in progress name the layers they are about to use.
  for (const entry of lockEntries.filter((name) => name.endsWith('.fork.json'))) {
    const journal = await sandboxes.journals.read(entry.replace(/\.fork\.json$/, ''));
    if (journal && journal !== 'unreadable') for (const layer of journal.layers) named.add(layer);
  }
  for (const layer of layerEntries) {
    const path = sandboxes.layers.layerPath(layer);
    if (named.has(layer) || !/^[0-9a-f]+$/.test(layer) || !(await olderThanGrace(path))) continue;
    found.push({
      kind: 'layer',
      name: layer,
      bytes: 0,
      reason: 'no volume uses it',
      remove: () => sandboxes.layers.removeLayer(layer),
      gone: () => missing(path),
    });
  }
  const volumeNames = new Set(volumes.map((volume) => volume.Name));
  for (const entry of workEntries) {
    const path = sandboxes.layers.workPath(entry);
    if (!entry.startsWith('statebox-') || volumeNames.has(entry) || !(await olderThanGrace(path))) continue;
    found.push({
      kind: 'workdir',
      name: `w/${entry}`,
      bytes: 0,
      reason: 'its volume is gone',
      remove: () => sandboxes.layers.removeWorkdir(entry),
      gone: () => missing(path),
    });
  }
  for (const volume of volumes) {
    const sandboxId = volume.Labels?.[LABEL.id] ?? '';
    const age = volume.CreatedAt ? Date.now() - Date.parse(volume.CreatedAt) : 0;
    if (idsWithContainer.has(sandboxId) || !(age > GRACE_MS)) continue;
    found.push({
      kind: 'volume',
      name: volume.Name,
      bytes: 0,
      reason: 'its sandbox has no container (a destroy or create died)',
      // removeVolume keeps a volume any container still has, and the layers other volumes name.
      remove: () =>
        SANDBOX_ID.test(sandboxId)
          ? sandboxes.locks.run(sandboxId, async () => {
              await sandboxes.removeVolume(volume.Name);
              await sandboxes.locks.forget(sandboxId);
            })
          : sandboxes.removeVolume(volume.Name),
      gone: async () =>
        (
          await sandboxes.client.request('GET', `/volumes/${volume.Name}`, { accept: [404] }).catch(() => ({
            status: 0,
          }))
        ).status === 404,
    });
  }
  for (const entry of lockEntries) {
    const sandboxId = entry.replace(/\.(lock|fork\.json)$/, '');
    if (sandboxId === entry || !SANDBOX_ID.test(sandboxId) || idsInUse.has(sandboxId)) continue;
    const path = join(locksDir, entry);
    found.push({
      kind: 'lock',
      name: `locks/${entry}`,
      bytes: 0,
      reason: 'its sandbox is gone',
      remove: () => sandboxes.locks.run(sandboxId, () => rm(path, { force: true })),
      gone: () => missing(path),
    });
  }
  for (const item of found) {
    if (item.kind === 'layer') item.bytes = await diskBytes([sandboxes.layers.layerPath(item.name)]);
    if (item.kind === 'workdir') item.bytes = await diskBytes([join(stateDir, item.name)]);
    if (item.kind === 'volume') {
      const [upper] = parseLayers(volumes.find((volume) => volume.Name === item.name)?.Labels ?? null);
      item.bytes = upper ? await diskBytes([sandboxes.layers.layerPath(upper)]) : 0;
    }
  }
  return found;
}

export async function pruneState(sandboxes: Sandboxes, options: PruneOptions): Promise<PruneReport> {
  await sandboxes.prepare('prune');
  const found = await findLeftovers(sandboxes);
  const items: PruneItem[] = [];
  for (const { remove, gone, ...item } of found) {
    if (!options.dryRun) await remove();
    items.push({ ...item, removed: options.dryRun ? false : await gone() });
  }
  const counted = options.dryRun ? items : items.filter((item) => item.removed);
  return { dryRun: options.dryRun, items, freedBytes: counted.reduce((sum, item) => sum + item.bytes, 0) };
}

import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { newId, randomHex } from '@statebox/adapter-kit';
import {
  DEFAULT_WORKDIR,
  type ForkRequest,
  ProviderError,
  type SandboxInfo,
  SandboxNotFoundError,
} from '@statebox/core';
import type { ForkJournal } from './journal.js';
import {
  type ContainerJson,
  containerName,
  isPendingStart,
  LABEL,
  PROVIDER,
  pickStateboxLabels,
  toInfo,
  userLabels,
  workspaceVolume,
} from './labels.js';
import { hasOwnChanges } from './layers.js';
import { completeHardLinks, indexedInodes, seedLinkGroups, upperLinkGroups } from './links.js';
import { createEgressNetwork, isEgressNetwork, removeNetwork } from './network.js';
import type { Limits, Sandboxes } from './sandboxes.js';

/** Paths that Docker adds to every container layer (mount points), which are not the sandbox's changes. */
const RUNTIME_MOUNT_POINTS = new Set([
  '/sbin',
  '/sbin/docker-init',
  // Where /sbin is a symlink to usr/sbin (Debian 12 and later), the init lands here.
  '/usr',
  '/usr/sbin',
  '/usr/sbin/docker-init',
  '/workspace',
]);

export function newSandboxId(): string {
  return newId('sb-');
}

/** The limits a container runs with, for the containers made from it. */
export function limitsOf(container: ContainerJson): Limits {
  const host = container.HostConfig;
  return {
    PidsLimit: host.PidsLimit ?? 0,
    Memory: host.Memory ?? 0,
    MemorySwap: host.MemorySwap ?? 0,
    ShmSize: host.ShmSize ?? 64 * 1024 ** 2,
    NanoCpus: host.NanoCpus ?? 0,
    ...(host.StorageOpt && Object.keys(host.StorageOpt).length > 0 && { StorageOpt: host.StorageOpt }),
  };
}

/**
 * Fork without copying the workspace; runs under the source's lock.
 *
 * 1. Write a journal naming everything the fork will make (see journal.ts).
 * 2. Freeze the source (`pause`, ~20 ms) so its files and root filesystem hold still; commit its container
 *    layer when it changed (~50 ms); seal its workspace upper: parent and child each get a volume with a
 *    fresh upper over [sealed upper, ...older layers].
 * 3. Link the hard links written since the last fork whole into the sealed upper (links.ts); create the
 *    child and the source's replacement under temporary names; kill the frozen original (its mount must
 *    let go of the sealed upper before another mount may use it as a lower); start the child.
 * 4. Commit by renames: source -> retired name, replacement -> the sandbox's name (the point of no
 *    return), child -> its name. Remove the journal and return; the replacement starts and the frozen
 *    original is removed right after.
 *
 * Whatever kills the process, the next locked operation on the source reads the journal and undoes the
 * fork (before the replacement holds the sandbox's name) or finishes it (after).
 */
export async function forkSandbox(
  sandboxes: Sandboxes,
  sandboxId: string,
  request: ForkRequest,
): Promise<SandboxInfo> {
  const operation = 'fork';
  const { client, layers, options } = sandboxes;
  await sandboxes.prepare(operation);
  await sandboxes.starting.get(sandboxId);
  const source = await sandboxes.inspectRaw(sandboxId, operation);
  if (!source) throw new SandboxNotFoundError(sandboxId, { provider: PROVIDER, operation });
  await sandboxes.sweepRetired(sandboxId, operation);
  const sourceVolume = workspaceVolume(source);
  if (!sourceVolume) {
    throw new ProviderError(
      PROVIDER,
      `Sandbox ${sandboxId} has no statebox workspace volume; it cannot be forked.`,
      {
        sandboxId,
        operation,
      },
    );
  }
  const stack = await sandboxes.volumeLayers(sourceVolume, sandboxId, operation);
  const wasRunning = source.State.Running && !source.State.Paused;
  const name = containerName(sandboxId);
  const childId = newSandboxId();
  const suffix = randomHex(3);
  const flat = layers.needsCompaction(stack, options.maxLayers) ? layers.newLayerId() : undefined;
  const [parentUpper, childUpper] = [layers.newLayerId(), layers.newLayerId()];
  const egress = isEgressNetwork(source.HostConfig.NetworkMode);
  const journal: ForkJournal = {
    token: suffix,
    sourceContainer: source.Id,
    wasRunning,
    keepRunning: wasRunning || isPendingStart(source),
    retiredName: `${name}-retired-${suffix}`,
    replacementName: `${name}-next-${suffix}`,
    childId,
    childName: `${containerName(childId)}-forking`,
    layers: [parentUpper, childUpper, ...(flat ? [flat] : [])],
    volumes: [sandboxes.volumeName(sandboxId, parentUpper), sandboxes.volumeName(childId, childUpper)],
    ...(egress && { childNetwork: `statebox-${childId}` }),
  };
  await sandboxes.journals.write(sandboxId, journal);

  let replacement = '';
  let child = '';
  try {
    if (wasRunning) {
      await sandboxes.call(operation, sandboxId, () =>
        client.request('POST', `/containers/${source.Id}/pause`),
      );
    }
    await sealHardLinks(sandboxes, source, sourceVolume, stack);
    // The commit (~50 ms) and the layer bookkeeping do not depend on each other.
    const committing = commitRootFilesystem(sandboxes, source, sandboxId, suffix).then(async (result) => {
      if (result.committed) await sandboxes.journals.write(sandboxId, { ...journal, image: result.image });
      return result;
    });
    committing.catch(() => undefined); // awaited below; this only keeps an early failure from going unhandled
    const lowers = flat ? [await layers.flatten(stack, flat)] : stack;
    await Promise.all([layers.createLayer(parentUpper), layers.createLayer(childUpper)]);
    const [parentVolume, childVolume] = await Promise.all([
      sandboxes.createVolume(sandboxId, parentUpper, lowers, operation),
      sandboxes.createVolume(childId, childUpper, lowers, operation),
    ]);
    const childNetwork = egress
      ? await sandboxes.call(operation, childId, () =>
          createEgressNetwork(client, childId, options.egressSubnets, {
            [LABEL.provider]: PROVIDER,
            [LABEL.id]: childId,
          }),
        )
      : source.HostConfig.NetworkMode;
    const { image, committed } = await committing;
    const common = {
      image,
      env: source.Config.Env ?? [],
      user: source.Config.User,
      limits: limitsOf(source),
    };
    const childLabels = {
      [LABEL.provider]: PROVIDER,
      [LABEL.id]: childId,
      [LABEL.createdAt]: new Date().toISOString(),
      [LABEL.parent]: sandboxId,
      [LABEL.autostart]: 'false',
      ...userLabels(request.labels),
    };
    // Only the child starts now: two starts at once took 310–370 ms here against ~220 ms for one (the
    // daemon serialises parts of them), so the replacement starts right after the fork returns.
    const childPath = (async () => {
      child = await sandboxes.createContainer(
        {
          ...common,
          name: journal.childName,
          volume: childVolume,
          labels: childLabels,
          network: childNetwork,
        },
        childId,
        operation,
      );
    })();
    // The frozen original must let go of its volume first: with overlay's index=on (links.ts) a layer
    // cannot be one mount's upper and another's lower. SIGKILL ends frozen processes without running them.
    const releasing = wasRunning
      ? sandboxes.call(operation, sandboxId, async () => {
          await client.request('POST', `/containers/${source.Id}/kill`, { accept: [409] });
          await client.request('POST', `/containers/${source.Id}/wait`, {
            query: { condition: 'not-running' },
          });
        })
      : Promise.resolve();
    const parentPath = (async () => {
      replacement = await sandboxes.createContainer(
        {
          ...common,
          name: journal.replacementName,
          volume: parentVolume,
          network: source.HostConfig.NetworkMode,
          labels: {
            ...pickStateboxLabels(source.Config.Labels ?? {}),
            [LABEL.autostart]: String(journal.keepRunning),
          },
        },
        sandboxId,
        operation,
      );
    })();
    // allSettled, not all: the undo must wait until neither path can still make something.
    const failure = (await Promise.allSettled([childPath, parentPath, releasing])).find(
      (result): result is PromiseRejectedResult => result.status === 'rejected',
    );
    if (failure) throw failure.reason;
    if (committed) await seedRootLinks(sandboxes, source, [child, replacement], sandboxId);
    await sandboxes.start(child, childNetwork, childId, operation);
    const rename = (container: string, to: string) =>
      sandboxes.call(operation, sandboxId, () =>
        client.request('POST', `/containers/${container}/rename`, { query: { name: to } }),
      );
    await rename(source.Id, journal.retiredName);
    await rename(replacement, name);
    await rename(child, containerName(childId));
    // The original never mounts its volume again: its overlay index would only inflate link counts.
    await rm(join(layers.workPath(sourceVolume), 'index'), { recursive: true, force: true });
  } catch (error) {
    await settleFork(sandboxes, sandboxId, journal).catch(() => undefined);
    throw sandboxes.error(error, operation, sandboxId);
  }
  await sandboxes.journals.remove(sandboxId);
  // The frozen original never runs again: its upper is now a sealed layer. Removing it takes 0.1–0.2 s,
  // so it happens after returning; the next fork or destroy of this sandbox removes it if this process
  // exits first, and an exec starts a replacement that was left pending.
  if (journal.keepRunning) sandboxes.startInBackground(sandboxId, replacement, source.HostConfig.NetworkMode);
  sandboxes.retire(source.Id, sourceVolume);
  const { body } = await sandboxes.call(operation, childId, () =>
    client.request<ContainerJson>('GET', `/containers/${child}/json`),
  );
  return toInfo(body);
}

/**
 * Finishes or undoes the fork a journal describes, from whatever point it stopped at, then removes the
 * journal. The fork is done once its replacement holds the sandbox's name: then the child gets its name
 * and is started, and the original is removed; before that everything the fork made is removed and the
 * original gets its name back and is thawed.
 */
export async function settleFork(
  sandboxes: Sandboxes,
  sandboxId: string,
  journal: ForkJournal,
): Promise<void> {
  const { client } = sandboxes;
  const operation = 'fork';
  const name = containerName(sandboxId);
  const inspect = async (reference: string) =>
    (
      await client
        .request<ContainerJson>('GET', `/containers/${reference}/json`, { accept: [404] })
        .catch(() => ({ status: 404, body: undefined }))
    ).body as ContainerJson | undefined;
  const rename = (reference: string, to: string) =>
    sandboxes.call(operation, sandboxId, () =>
      client.request('POST', `/containers/${reference}/rename`, { query: { name: to } }),
    );

  const current = await inspect(name);
  const original = await inspect(journal.sourceContainer);
  if (current?.Id && current.Id !== journal.sourceContainer) {
    const childName = containerName(journal.childId);
    if ((await inspect(journal.childName))?.Id) await rename(journal.childName, childName);
    const child = await inspect(childName);
    if (child?.Id && !child.State.Running) {
      await sandboxes
        .start(child.Id, child.HostConfig.NetworkMode, journal.childId, operation)
        .catch(() => undefined);
    }
    if (isPendingStart(current)) {
      await sandboxes
        .start(current.Id, current.HostConfig.NetworkMode, sandboxId, operation)
        .catch(() => undefined);
    }
    if (original?.Id) {
      await sandboxes.removeContainer(original.Id);
      const volume = workspaceVolume(original);
      if (volume) await sandboxes.removeVolume(volume);
    }
  } else {
    for (const reference of [journal.childName, journal.replacementName])
      await sandboxes.removeContainer(reference);
    if (!current?.Id && original?.Id) await rename(original.Id, name);
    for (const volume of journal.volumes) {
      await sandboxes.removeVolume(volume);
      await sandboxes.layers.removeWorkdir(volume);
    }
    await sandboxes.removeUnusedLayers(journal.layers);
    if (journal.childNetwork) await removeNetwork(client, journal.childNetwork);
    // Found by the fork's label too: a process killed between the commit and the journal's update.
    const { body: images } = await client
      .request<{ Id: string }[]>('GET', '/images/json', {
        query: {
          filters: JSON.stringify({ label: [`${LABEL.fork}=${journal.token}`] }),
        },
      })
      .catch(() => ({ body: [] as { Id: string }[] }));
    for (const image of new Set([
      ...(journal.image ? [journal.image] : []),
      ...images.map((entry) => entry.Id),
    ])) {
      await client.request('DELETE', `/images/${image}`).catch(() => undefined);
    }
    if (journal.wasRunning && original?.State.Paused) {
      await sandboxes.call(operation, sandboxId, () =>
        client.request('POST', `/containers/${original.Id}/unpause`),
      );
    } else if (journal.wasRunning && original?.Id && !original.State.Running) {
      // Killed to release its volume before the fork died: its files are intact, its processes ended.
      await sandboxes.start(original.Id, original.HostConfig.NetworkMode, sandboxId, operation);
    }
  }
  await sandboxes.journals.remove(sandboxId);
}

/**
 * Links every name of each hard-linked file written since the last fork into the upper that the fork
 * seals (links.ts), looking at the merged view of the frozen container, or of a stopped one's volume.
 */
async function sealHardLinks(
  sandboxes: Sandboxes,
  source: ContainerJson,
  volume: string,
  stack: readonly string[],
): Promise<void> {
  const { layers } = sandboxes;
  const workdir = layers.workPath(volume);
  if ((await indexedInodes(workdir)).size === 0) return;
  const paths = { upper: layers.layerPath(stack[0]!), workdir };
  if (source.State.Running && source.State.Pid) {
    await completeHardLinks({ ...paths, merged: `/proc/${source.State.Pid}/root${DEFAULT_WORKDIR}` });
  } else {
    await layers.withMergedView(layers.mountOptions(stack[0]!, stack.slice(1), volume), (merged) =>
      completeHardLinks({ ...paths, merged }),
    );
  }
}

/**
 * Gives the new containers of a fork whose root filesystem was committed their own copy of each hard-link
 * group of the source's container layer (links.ts), before they start.
 */
async function seedRootLinks(
  sandboxes: Sandboxes,
  source: ContainerJson,
  containers: string[],
  sandboxId: string,
): Promise<void> {
  const upperOf = (container: ContainerJson | undefined) =>
    container?.GraphDriver?.Name === 'overlay2' ? container.GraphDriver.Data?.UpperDir : undefined;
  const from = upperOf(source);
  if (!from) return;
  const groups = await upperLinkGroups(from);
  if (groups.length === 0) return;
  for (const container of containers) {
    const { body } = await sandboxes.call('fork', sandboxId, () =>
      sandboxes.client.request<ContainerJson>('GET', `/containers/${container}/json`),
    );
    const to = upperOf(body);
    if (to) await seedLinkGroups(groups, from, to);
  }
}

/** Repairs a sandbox whose fork died, if its journal says so. The provider's `Recovery`. */
export async function recoverSandbox(sandboxes: Sandboxes, sandboxId: string): Promise<void> {
  const journal = await sandboxes.journals.read(sandboxId);
  if (journal === 'unreadable') await sandboxes.journals.remove(sandboxId);
  else if (journal) await settleFork(sandboxes, sandboxId, journal);
}

/** Commits the container's root-filesystem diff; squashes it first when the chain gets too deep. */
async function commitRootFilesystem(
  sandboxes: Sandboxes,
  container: ContainerJson,
  sandboxId: string,
  forkToken: string,
): Promise<{ image: string; committed: boolean }> {
  const operation = 'fork';
  const { client } = sandboxes;
  // The fork's token lets an undo find the image even if the process died before journaling its id.
  const changes = [`LABEL ${LABEL.committed}=true`, `LABEL ${LABEL.fork}=${forkToken}`];
  // Most sandboxes only write under /workspace, which is not in the container layer. Then there is
  // nothing to commit: reuse the image (saves the ~50 ms commit, and the chain does not grow).
  let changed: boolean | undefined;
  const upperDir =
    container.GraphDriver?.Name === 'overlay2' ? container.GraphDriver.Data?.UpperDir : undefined;
  if (upperDir) changed = await hasOwnChanges(upperDir, RUNTIME_MOUNT_POINTS);
  if (changed === undefined) {
    const { body: changes } = await sandboxes.call(operation, sandboxId, () =>
      client.request<{ Path: string }[] | null>('GET', `/containers/${container.Id}/changes`),
    );
    changed = (changes ?? []).some((change) => !RUNTIME_MOUNT_POINTS.has(change.Path));
  }
  if (!changed) return { image: container.Image, committed: false };
  const { body } = await sandboxes.call(operation, sandboxId, () =>
    client.request<{ Id: string }>(
      'POST',
      `/commit?container=${container.Id}&pause=false&${changes.map((change) => `changes=${encodeURIComponent(change)}`).join('&')}`,
    ),
  );
  const { body: image } = await sandboxes.call(operation, sandboxId, () =>
    client.request<{ RootFS: { Layers?: string[] } }>('GET', `/images/${body.Id}/json`),
  );
  if ((image.RootFS.Layers?.length ?? 0) < sandboxes.options.maxImageDepth)
    return { image: body.Id, committed: true };
  // Docker refuses images deeper than 125 layers ("max depth exceeded"): flatten to one layer.
  const squashed = await sandboxes.call(operation, sandboxId, () => client.squash(container.Id, changes));
  await client.request('DELETE', `/images/${body.Id}`).catch(() => undefined);
  return { image: squashed, committed: true };
}

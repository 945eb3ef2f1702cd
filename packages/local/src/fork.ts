import { mkdir } from 'node:fs/promises';
import type { ForkRequest } from '@statebox/core';
import { freezeSandbox } from './freeze.js';
import { type Home, newLayerId, newSandboxId, type SandboxRecord } from './home.js';
import { initIsAlive } from './init.js';
import type { IsolationTools } from './isolation.js';
import { copyUpper, createUpper, isEmptyDir, sealUpper, smallTreeFingerprint, upperPath } from './layers.js';
import { type Context, stopSandbox } from './repair.js';

export type ForkHost = {
  home: Home;
  tools: IsolationTools;
  /** Starts a sandbox's init and records it (the provider's `#start`). */
  start(record: SandboxRecord): Promise<SandboxRecord>;
};

/**
 * Forks a sandbox whose lock the caller holds; returns the child's record.
 *
 * Crash safety: the source's record names the fork (`pendingFork`: the child's id, and the layer being
 * copied while its processes are frozen) before anything is done, and the child's record is `creating`
 * until the very last write. The child's lock is held throughout. A fork that dies at any point is
 * rolled back by the next operation on the source (`repairRecord`), or, for a child whose source is
 * gone, by garbage collection. The last two writes commit: first the source forgets the fork, then the
 * child becomes visible; between them the child is an orphan that nobody has seen, and is collected.
 */
export async function forkSandbox(
  host: ForkHost,
  source: SandboxRecord,
  request: ForkRequest,
): Promise<SandboxRecord> {
  const { home, tools } = host;
  const context: Context = { sandboxId: source.id, operation: 'fork' };
  const childId = newSandboxId();
  const releaseChild = await home.lock(childId);
  try {
    const wasRunning = source.status === 'running';
    let current: SandboxRecord = { ...source, pendingFork: { childId, wasRunning } };
    await home.write(current);
    // An upper that is still empty holds nothing to seal: the child can share the stack as it is, and a
    // running source keeps its processes. This makes N forks of one state cost one seal.
    let childLayers = (await isEmptyDir(upperPath(home, source))) ? current.layers : undefined;
    let restart = false;
    if (!childLayers && wasRunning && !tools.rootless && initIsAlive(current.runtime)) {
      const copied = await copyRunningUpper(home, current);
      if (copied) {
        current = copied;
        childLayers = [copied.liveCopy!.layerId, ...copied.layers];
      }
    }
    if (!childLayers) {
      current = await sealSource(home, current, context);
      childLayers = current.layers;
      restart = wasRunning;
    }
    const child: SandboxRecord = {
      version: 1,
      id: childId,
      labels: { ...request.labels },
      env: { ...source.env },
      createdAt: new Date().toISOString(),
      parentId: source.id,
      status: 'suspended',
      network: source.network,
      layers: childLayers,
      upper: 'u-0',
      ...(current.owner !== undefined && { owner: current.owner }),
      creating: true,
    };
    await mkdir(home.sandboxDir(childId), { mode: 0o700 });
    await createUpper(home, child, child.upper, false);
    await home.write(child);
    // Start the child and restart the source side by side: two cores, two independent inits. Both are
    // awaited before anything fails, so no start is still writing when the fork is rolled back.
    const [startedChild, restarted] = await Promise.allSettled([
      host.start(child),
      restart ? host.start(current) : Promise.resolve(current),
    ]);
    if (startedChild.status === 'rejected') throw startedChild.reason;
    if (restarted.status === 'rejected') throw restarted.reason;
    const finished: SandboxRecord = { ...restarted.value };
    delete finished.pendingFork;
    await home.write(finished);
    const committed: SandboxRecord = { ...startedChild.value };
    delete committed.creating;
    await home.write(committed);
    return committed;
  } finally {
    await releaseChild({ remove: !(await home.exists(home.sandboxDir(childId))) });
  }
}

/**
 * A running source whose upper layer is small is copied while its processes are frozen: it keeps
 * running, and nothing waits for an overlay to unmount (90-470 ms with many cached files). Returns the
 * source's record with the copy as its `liveCopy`, or undefined when the upper is too large, too deep
 * to copy, would not hold still, or the copy failed: the caller then seals instead, which works for
 * any tree.
 */
async function copyRunningUpper(home: Home, source: SandboxRecord): Promise<SandboxRecord | undefined> {
  const fingerprint = await smallTreeFingerprint(upperPath(home, source));
  if (fingerprint === undefined) return undefined;
  if (source.liveCopy?.fingerprint === fingerprint) return source;
  // Under the layers lock: a concurrent garbage collection must not see the new layer before a record
  // that references it, nor miss a reference moving from this record's `liveCopy` to a child's.
  const releaseLayers = await home.lock('layers');
  try {
    const layerId = newLayerId();
    // Written before the freeze: whoever finds it under the lock thaws the source and drops the copy.
    await home.write({ ...source, pendingFork: { ...source.pendingFork!, layerId, frozen: true } });
    const thaw = await freezeSandbox(source.runtime!, source.runtime!.cgroups);
    if (!thaw) return undefined;
    try {
      await copyUpper(home, source, layerId);
    } catch {
      // Typically a path too long for `cp`; sealing is a rename and has no such limit.
      return undefined;
    } finally {
      thaw();
    }
    const copied: SandboxRecord = {
      ...source,
      liveCopy: { layerId, fingerprint },
      pendingFork: { ...source.pendingFork!, layerId },
    };
    await home.write(copied);
    return copied;
  } finally {
    await releaseLayers();
  }
}

/**
 * Stops the source and seals its upper layer into the shared store (a rename: O(1) at any size or
 * depth). Its `pendingFork` stays in the record, so a crash from here on restores its status.
 */
async function sealSource(home: Home, source: SandboxRecord, context: Context): Promise<SandboxRecord> {
  await stopSandbox(home, source.id, source, context);
  const releaseLayers = await home.lock('layers');
  try {
    const stopped: SandboxRecord = { ...source, status: 'suspended' };
    delete stopped.runtime;
    delete stopped.teardown;
    // The upper is about to become a sealed layer: a copy of it is no longer reusable.
    delete stopped.liveCopy;
    return await sealUpper(home, stopped);
  } finally {
    await releaseLayers();
  }
}

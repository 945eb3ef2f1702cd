import { randomBytes } from 'node:crypto';
import { readdir, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { ProviderError } from '@statebox/core';
import { detectCgroups, removeSandboxCgroups, sweepSandboxCgroups } from './cgroups.js';
import { interruptedError } from './errors.js';
import { thawSandbox } from './freeze.js';
import { type Home, hasIntent, isValidId, removeTree, type SandboxRecord } from './home.js';
import { initIsAlive, killInit, type RunningInit, waitForExit } from './init.js';
import {
  ABANDONED_WAIT_MS,
  collectGarbage,
  isAbandoned,
  removeBuilding,
  repairCompact,
  repairSeal,
} from './layers.js';
import { firstChild, pidNamespace, processesWithArgument, readProcess, signalQuietly } from './procfs.js';

/**
 * Crash repair. Every multi-step operation writes its intent into the sandbox's record before acting,
 * under the sandbox's lock; the kernel releases that lock when its holder dies. So whoever next holds
 * the lock and finds an intent knows its operation died part-way, and finishes or undoes it here before
 * doing anything else.
 */

export type Context = { sandboxId: string; operation: string };

/** Repairs every leftover intent of a record; undefined when the sandbox was never handed out and is now removed. */
export async function repairRecord(
  home: Home,
  record: SandboxRecord,
  context: Context,
): Promise<SandboxRecord | undefined> {
  let current = record;
  if (current.pendingSeal) current = await repairSeal(home, current);
  if (current.pendingCompact) current = await repairCompact(home, current);
  if (current.pendingStart) {
    // A start died between starting an init and recording it: that init is no one's; stop it.
    await stopStrays(home, current.id, initIsAlive(current.runtime) ? current.runtime : undefined, context);
    current = { ...current };
    delete current.pendingStart;
    await home.write(current);
  }
  if (current.pendingFork) current = await rollBackFork(home, current, context);
  if (current.creating) {
    await removeSandbox(home, current.id, current, context);
    return undefined;
  }
  return current;
}

/**
 * Undoes a fork that died: the source's processes thawed (a freeze holds them until then), the layer
 * being copied and the half-made child removed, and a source that the fork stopped to seal marked
 * running again (its next exec or resume starts it; its files are all in its layers).
 */
async function rollBackFork(home: Home, record: SandboxRecord, context: Context): Promise<SandboxRecord> {
  const intent = record.pendingFork!;
  if (record.runtime) thawSandbox(record.runtime);
  if (intent.layerId) await removeBuilding(home, intent.layerId, record.id);
  if (isValidId(intent.childId) && (await home.exists(home.sandboxDir(intent.childId)))) {
    // Lock order is source, then child, as in fork itself.
    const release = await home.lock(intent.childId);
    let removed = false;
    try {
      const child = await home.read(intent.childId).catch(() => undefined);
      if (!child || child.creating) {
        await removeSandbox(home, intent.childId, child, { ...context, sandboxId: intent.childId });
        removed = true;
      }
    } finally {
      await release({ remove: removed });
    }
  }
  const repaired: SandboxRecord = { ...record };
  delete repaired.pendingFork;
  if (intent.wasRunning && repaired.status === 'suspended') {
    repaired.status = 'running';
    delete repaired.runtime;
  }
  await home.write(repaired);
  return repaired;
}

/**
 * The running inits of a sandbox, found by their supervisor (the `unshare` whose argv names the
 * sandbox's fstab), whatever its record says.
 */
export function findInits(home: Home, sandboxId: string): RunningInit[] {
  const own = pidNamespace(process.pid);
  const fstab = join(home.sandboxDir(sandboxId), 'fstab');
  return processesWithArgument(fstab).map((supervisorPid) => {
    const initPid = firstChild(supervisorPid);
    const init = initPid === undefined ? undefined : readProcess(initPid);
    // A supervisor caught before its fork has no init yet: it is then its own "init" to stop, and
    // must never be treated as a namespace's PID 1 (its namespace is ours).
    if (!init || pidNamespace(init.pid) === own) {
      return {
        supervisorPid,
        initPid: supervisorPid,
        initStartTime: readProcess(supervisorPid)?.startTime ?? '',
      };
    }
    return { supervisorPid, initPid: init.pid, initStartTime: init.startTime };
  });
}

/** Stops every init of a sandbox except `keep` (the one its record names, when alive). */
export async function stopStrays(
  home: Home,
  sandboxId: string,
  keep: RunningInit | undefined,
  context: Context,
): Promise<void> {
  const strays = findInits(home, sandboxId).filter((init) => init.supervisorPid !== keep?.supervisorPid);
  await stopInits(strays, context);
}

async function stopInits(inits: RunningInit[], context: Context): Promise<void> {
  const own = pidNamespace(process.pid);
  for (const init of inits) {
    if (init.initPid !== init.supervisorPid && pidNamespace(init.initPid) !== own) killInit(init);
    else signalQuietly(init.supervisorPid, 'SIGKILL');
  }
  for (const init of inits) await waitForExit(init, context);
}

/**
 * Stops everything of a sandbox: the init its record names, the one of its last suspend, and any other
 * it finds (a start that died before recording it; a corrupt record names none), then drops their
 * control groups.
 */
export async function stopSandbox(
  home: Home,
  sandboxId: string,
  record: SandboxRecord | undefined,
  context: Context,
): Promise<void> {
  const known = [record?.runtime, record?.teardown].filter((init): init is RunningInit => init !== undefined);
  for (const init of known) killInit(init);
  const strays = findInits(home, sandboxId).filter(
    (found) => !known.some((init) => init.supervisorPid === found.supervisorPid),
  );
  await stopInits(strays, context);
  for (const init of known) await waitForExit(init, context);
  for (const init of known) if (init.cgroups) await removeSandboxCgroups(init.cgroups);
  const roots = detectCgroups();
  if (roots) await sweepSandboxCgroups(roots, sandboxId);
}

/** Stops a sandbox and deletes its directory (renamed first, so a half-deleted sandbox never looks whole). */
export async function removeSandbox(
  home: Home,
  sandboxId: string,
  record: SandboxRecord | undefined,
  context: Context,
): Promise<void> {
  await stopSandbox(home, sandboxId, record, context);
  const trash = join(home.sandboxesDir, `.deleted-${sandboxId}-${randomBytes(3).toString('hex')}`);
  try {
    await rename(home.sandboxDir(sandboxId), trash);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  try {
    await removeTree(trash);
  } catch (error) {
    throw new ProviderError(
      'local',
      `Sandbox ${sandboxId} is stopped and gone from list(), but deleting its files failed: ` +
        `${(error as Error).message}. The next destroy or fork of any sandbox here retries it.`,
      { ...context, cause: error },
    );
  }
}

/**
 * Removes what dead processes left among the sandboxes: trash of interrupted destroys, sandboxes whose
 * create or fork never finished (no record, or one still `creating`), and lock files of sandboxes that
 * are gone. Each is checked under its sandbox's lock, taken only if free: a maker at work holds it.
 * `heldId` is the sandbox whose lock the caller holds.
 */
export async function sweepSandboxes(home: Home, heldId: string | undefined): Promise<void> {
  for (const entry of await readdir(home.sandboxesDir).catch(() => [] as string[])) {
    if (entry.startsWith('.deleted-')) {
      const owner = entry.slice('.deleted-'.length).replace(/-[a-z0-9]+$/, '');
      if (owner === heldId || (await isAbandoned(home, owner)))
        await removeTree(join(home.sandboxesDir, entry));
      continue;
    }
    if (!isValidId(entry) || entry === heldId) continue;
    if (!(await isUnfinished(home, entry))) continue;
    const release = await home.tryLock(entry, ABANDONED_WAIT_MS);
    if (!release) continue;
    let removed = false;
    try {
      if (await isUnfinished(home, entry)) {
        const record = await home.read(entry).catch(() => undefined);
        await removeSandbox(home, entry, record, { sandboxId: entry, operation: 'destroy' });
        removed = true;
      }
    } finally {
      await release({ remove: removed });
    }
  }
  for (const entry of await readdir(home.locksDir).catch(() => [] as string[])) {
    const id = entry.replace(/\.lock$/, '');
    if (id === entry || !isValidId(id) || id === heldId) continue;
    if (!(await home.exists(home.sandboxDir(id)))) await isAbandoned(home, id);
  }
}

/** A sandbox directory with no record, or a record still `creating`. A corrupt record is not ours to judge. */
async function isUnfinished(home: Home, id: string): Promise<boolean> {
  try {
    const record = await home.read(id);
    return record === undefined ? await home.exists(home.sandboxDir(id)) : record.creating === true;
  } catch {
    return false;
  }
}

/**
 * Destroys a sandbox, also one whose record is corrupt (whatever init of it runs is found on the host)
 * and one whose create, fork or destroy died part-way; then drops what nobody uses any more.
 */
export async function destroySandbox(home: Home, sandboxId: string): Promise<void> {
  if (!isValidId(sandboxId) || !(await home.exists(home.sandboxDir(sandboxId)))) return;
  const context = { sandboxId, operation: 'destroy' };
  const release = await home.lock(sandboxId);
  try {
    let record: SandboxRecord | undefined;
    try {
      record = await home.read(sandboxId, 'destroy');
    } catch (error) {
      // A corrupt record: destroyed all the same, by what the host shows of the sandbox.
      if (!ProviderError.isInstance(error)) throw error;
    }
    if (record && hasIntent(record)) record = await repairRecord(home, record, context);
    await removeSandbox(home, sandboxId, record, context);
    await sweepSandboxes(home, sandboxId);
    const releaseLayers = await home.lock('layers');
    try {
      await collectGarbage(home, sandboxId);
    } finally {
      await releaseLayers();
    }
  } finally {
    await release({ remove: true });
  }
}

/**
 * After a command ended abnormally: the error to throw if the init it entered is no longer the
 * sandbox's live init (a suspend, destroy or restarting fork ran meanwhile), for its end then says
 * nothing about the command. Such an operation holds the lock until its record is written, so waiting
 * for the lock gives its outcome.
 */
export async function interruption(
  home: Home,
  sandboxId: string,
  entered: RunningInit,
  operation: string,
): Promise<Error | undefined> {
  const release = await home.lock(sandboxId);
  let current: SandboxRecord | undefined;
  try {
    current = await home.read(sandboxId, operation);
  } finally {
    await release({ remove: current === undefined && !(await home.exists(home.sandboxDir(sandboxId))) });
  }
  const same =
    current?.runtime?.initPid === entered.initPid && current.runtime.initStartTime === entered.initStartTime;
  if (same && initIsAlive(entered)) return undefined;
  if (!current) return interruptedError(sandboxId, operation, 'gone');
  return interruptedError(sandboxId, operation, current.status === 'suspended' ? 'suspended' : 'restarted');
}

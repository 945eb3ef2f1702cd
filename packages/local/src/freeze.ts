import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freezeCgroup, type SandboxCgroups, thawCgroup } from './cgroups.js';
import { initIsAlive, type RunningInit } from './init.js';
import { namespaceProcesses, type ProcessInfo, pidNamespace, readProcess, signalQuietly } from './procfs.js';

/** Holding a running sandbox still (for a fork's live copy of its files) and letting it go again. */

/**
 * Stops every process of a running sandbox (SIGSTOP) and waits until each one really is stopped, so no
 * write is half done: a process inside a system call stops only when the call returns. Repeats until no
 * new process appeared meanwhile. Returns a function that lets them all continue, or undefined when the
 * sandbox would not hold still within `timeoutMs` (it is then already running again).
 */
export async function freezeSandbox(
  runtime: RunningInit,
  groups?: SandboxCgroups,
  timeoutMs = 2000,
): Promise<(() => void) | undefined> {
  if (groups) {
    // The freezer stops every process of the sandbox at a point where no system call is half done,
    // new ones included (a process joining a frozen group freezes at once), and nothing else.
    const frozen = await freezeCgroup(groups.freezer, timeoutMs).catch(() => false);
    if (!frozen) {
      await thawCgroup(groups.freezer);
      return undefined;
    }
    return () => {
      writeFileSync(join(groups.freezer, 'freezer.state'), 'THAWED');
    };
  }
  const namespace = initIsAlive(runtime) ? pidNamespace(runtime.initPid) : undefined;
  if (!namespace) return undefined;
  const thaw = () => thawSandbox(runtime);
  const stopped = new Set<number>();
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { members, waiters } = namespaceProcesses(namespace);
    // Waiters first, each really stopped before any member stops: an exec's nsenter that sees its
    // child stop while it runs stops itself, and continues the child only once continued itself, so a
    // thaw that reached it before it stopped left it, and the exec, stopped for good.
    const freshWaiters = waiters.filter((waiter) => !stopped.has(waiter.pid));
    for (const waiter of freshWaiters) {
      signalQuietly(waiter.pid, 'SIGSTOP');
      stopped.add(waiter.pid);
    }
    if (freshWaiters.length > 0) {
      if (!(await allStopped(freshWaiters, deadline))) {
        thaw();
        return undefined;
      }
      continue;
    }
    const fresh = members.filter((member) => !stopped.has(member.pid));
    for (const member of fresh) {
      signalQuietly(member.pid, 'SIGSTOP');
      stopped.add(member.pid);
    }
    const running = members.filter((member) => isRunning(member.pid));
    if (fresh.length === 0 && running.length === 0) return thaw;
    if (Date.now() > deadline) {
      thaw();
      return undefined;
    }
    await new Promise((resolve) => setTimeout(resolve, running.length > 0 ? 1 : 0));
  }
}

function isRunning(pid: number): boolean {
  const state = readProcess(pid)?.state;
  return state !== undefined && state !== 'T' && state !== 't' && state !== 'Z' && state !== 'X';
}

async function allStopped(processes: ProcessInfo[], deadline: number): Promise<boolean> {
  while (processes.some((info) => isRunning(info.pid))) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  return true;
}

/**
 * Lets every process of a sandbox run again after a freeze, also one that a crash cut short: thaws its
 * freezer cgroup, then sends SIGCONT to every process in its PID namespace (whatever its state: a
 * SIGSTOP still pending on a process inside a system call is discarded too), then to the host-side
 * processes waiting on them. Members first: an exec's nsenter continued while its child is still
 * stopped would see that stop and stop itself again.
 */
export function thawSandbox(runtime: RunningInit): void {
  if (runtime.cgroups) {
    try {
      writeFileSync(join(runtime.cgroups.freezer, 'freezer.state'), 'THAWED');
    } catch {
      // The group is gone with its sandbox.
    }
  }
  const namespace = initIsAlive(runtime) ? pidNamespace(runtime.initPid) : undefined;
  if (!namespace) return;
  const { members, waiters } = namespaceProcesses(namespace);
  for (const member of members) signalQuietly(member.pid, 'SIGCONT');
  for (const waiter of waiters) signalQuietly(waiter.pid, 'SIGCONT');
}

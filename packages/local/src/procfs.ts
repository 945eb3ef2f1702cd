import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

/**
 * What /proc says about the processes of a sandbox, read the way the host sees them. Sandboxes are
 * found by their PID namespace, which their processes cannot leave or fake.
 */

export type ProcessInfo = { pid: number; ppid: number; state: string; startTime: string; name: string };

/** /proc/<pid>/stat, or undefined when the process is gone. */
export function readProcess(pid: number): ProcessInfo | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) may contain spaces and parentheses; the fields after it are plain.
  const close = stat.lastIndexOf(')');
  const fields = stat.slice(close + 2).split(' ');
  return {
    pid,
    ppid: Number(fields[1]),
    state: fields[0] ?? '?',
    startTime: fields[19] ?? '',
    name: stat.slice(stat.indexOf('(') + 1, close),
  };
}

export function listPids(): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (entry.charCodeAt(0) >= 48 && entry.charCodeAt(0) <= 57) pids.push(Number(entry));
  }
  return pids;
}

/** The identity of a process's PID namespace (`pid`), or of the one its next children get. */
export function pidNamespace(pid: number, which: 'pid' | 'pid_for_children' = 'pid'): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/ns/${which}`);
  } catch {
    return undefined;
  }
}

/**
 * The processes of a PID namespace (`members`: also those of namespaces nested in it, which a sandbox
 * may make, as they descend from its own) and the host-side processes tied to it (`waiters`): the
 * parents outside it of its members (an exec's `nsenter`, the supervisor `unshare`) and the processes
 * that have joined it for their next child but not forked yet (an `nsenter` in the middle of entering).
 */
export function namespaceProcesses(namespace: string): { members: ProcessInfo[]; waiters: ProcessInfo[] } {
  const inside: ProcessInfo[] = [];
  const children = new Map<number, ProcessInfo[]>();
  const entering: number[] = [];
  for (const pid of listPids()) {
    const info = readProcess(pid);
    if (!info) continue;
    children.set(info.ppid, [...(children.get(info.ppid) ?? []), info]);
    if (pidNamespace(pid) === namespace) inside.push(info);
    else if (pidNamespace(pid, 'pid_for_children') === namespace) entering.push(pid);
  }
  const members = [...inside];
  const memberPids = new Set(members.map((member) => member.pid));
  for (let index = 0; index < members.length; index++) {
    for (const child of children.get(members[index]!.pid) ?? []) {
      if (!memberPids.has(child.pid)) {
        memberPids.add(child.pid);
        members.push(child);
      }
    }
  }
  const waiterPids = new Set(entering);
  for (const member of members) {
    if (!memberPids.has(member.ppid) && member.ppid > 1) waiterPids.add(member.ppid);
  }
  const waiters = [...waiterPids].flatMap((pid) => readProcess(pid) ?? []);
  return { members, waiters };
}

/**
 * Processes in this process's own PID namespace (never one inside a sandbox, which could name
 * anything in its argv) that have `argument` as one of their arguments.
 */
export function processesWithArgument(argument: string): number[] {
  const own = pidNamespace(process.pid);
  const found: number[] = [];
  for (const pid of listPids()) {
    if (pid === process.pid) continue;
    let argv: string;
    try {
      argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      continue;
    }
    if (argv.split('\0').includes(argument) && pidNamespace(pid) === own) found.push(pid);
  }
  return found;
}

/** First child of a process (from /proc/<pid>/task/<pid>/children), if any. */
export function firstChild(pid: number): number | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim();
    const child = Number(text.split(' ')[0]);
    return Number.isInteger(child) && child > 0 ? child : undefined;
  } catch {
    return undefined;
  }
}

export function signalQuietly(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // Gone.
  }
}

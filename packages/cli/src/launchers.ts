import { readFileSync } from 'node:fs';

/** Command lines of the wrappers a `npx -y pnpm@10 statebox …` start runs under. */
const LAUNCHER = /\b(npm|npx|pnpm)\b|node_modules\/\.bin\/node|^sh -c/;

/**
 * The processes this one was launched through (`npm exec`, `sh -c`, pnpm, the pinned Node's shell
 * wrapper), nearest first, up to the first ancestor that is none of them (the user's shell, systemd,
 * a container's init). Linux only (`/proc`); elsewhere none.
 */
export function launcherProcesses(pid = process.pid): Array<{ pid: number; startTime: string }> {
  const chain: Array<{ pid: number; startTime: string }> = [];
  let current = pid;
  for (let depth = 0; depth < 8; depth++) {
    const parent = processStat(current)?.ppid;
    if (!parent || parent <= 1) break;
    const stat = processStat(parent);
    const command = commandLine(parent);
    if (!stat || command === undefined || !LAUNCHER.test(command)) break;
    chain.push({ pid: parent, startTime: stat.startTime });
    current = parent;
  }
  return chain;
}

/**
 * Calls `onGone` once when any launcher exits. `kill <pid of npx>` ends npm, its `sh` and the pinned
 * Node's wrapper script, which forward no signal: the worker would run on as an orphan, so it
 * treats its launcher's end as the SIGTERM it was meant to get.
 */
export function watchLaunchers(onGone: (command: string) => void, intervalMs = 1000): () => void {
  const launchers = launcherProcesses().map((launcher) => ({
    ...launcher,
    command: commandLine(launcher.pid) ?? String(launcher.pid),
  }));
  if (launchers.length === 0) return () => undefined;
  const timer = setInterval(() => {
    const gone = launchers.find((launcher) => processStat(launcher.pid)?.startTime !== launcher.startTime);
    if (!gone) return;
    clearInterval(timer);
    onGone(gone.command);
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}

function processStat(pid: number): { ppid: number; startTime: string } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command: state ppid … starttime (field 22).
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { ppid: Number(fields[1]), startTime: fields[19] ?? '' };
  } catch {
    return undefined;
  }
}

function commandLine(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
  } catch {
    return undefined;
  }
}

import { join } from 'node:path';
import pty from '@lydell/node-pty';
import type { TerminalRequest, TerminalSession } from '@statebox/core';
import { type CgroupRoots, createExecCgroups, removeExecCgroups } from './cgroups.js';
import type { SandboxRecord } from './home.js';
import { enterArgs, HELPER_ENV, type IsolationTools } from './isolation.js';

/** What `terminal` needs of the provider: its running record, host tools and environment. */
export type TerminalHost = {
  running(): Promise<SandboxRecord>;
  ready(): Promise<{ tools: IsolationTools; cgroups: CgroupRoots | undefined }>;
  environment(record: SandboxRecord): Record<string, string>;
};

const LOGIN_SHELL = ['/bin/sh', '-c', 'if [ -x /bin/bash ]; then exec /bin/bash -l; fi; exec /bin/sh -l'];

/** Inside the sandbox: `cd` to the requested directory (a sandbox path), then the program. */
const ENTER_CWD =
  'cd -- "$1" 2>/dev/null || { echo "statebox: working directory $1 does not exist in the sandbox" >&2; exit 126; }; shift; exec "$@"';

/**
 * On the host, before anything enters the sandbox: join the exec's control groups (root mode), so the
 * shell and everything it starts count against the sandbox's limits and die with it.
 */
const JOIN_CGROUPS =
  'for procs in "$1" "$2" "$3"; do echo $$ > "$procs" || exit 125; done; shift 3; exec "$@"';

/**
 * A shell in a local sandbox on a pseudo-terminal that this process allocates (node-pty). The sandbox
 * gets only the terminal's slave side; the master stays here, so nothing in the sandbox can inject
 * input into the caller's own terminal. The program enters the sandbox exactly as an exec does (same
 * namespaces, uid, environment and control groups).
 */
export async function openTerminal(host: TerminalHost, request: TerminalRequest): Promise<TerminalSession> {
  const record = await host.running();
  const { tools } = await host.ready();
  const enter = enterArgs(tools, record.runtime!.initPid, record.network, host.environment(record));
  const groups = record.runtime!.cgroups;
  const execGroups = groups ? await createExecCgroups(groups) : undefined;
  // The wrapper joins the groups by path; the descriptors an exec would pass are not needed.
  await execGroups?.close();
  const inside = [...enter.args, '/bin/sh', '-c', ENTER_CWD, 'statebox-terminal', request.cwd];
  const argv = [...inside, ...(request.command ?? LOGIN_SHELL)];
  const [file, args] =
    execGroups && groups
      ? [
          '/bin/sh',
          [
            '-c',
            JOIN_CGROUPS,
            'statebox-terminal',
            join(execGroups.pids, 'cgroup.procs'),
            join(execGroups.freezer, 'cgroup.procs'),
            join(groups.memory, 'cgroup.procs'),
            enter.file,
            ...argv,
          ],
        ]
      : [enter.file, argv];
  const terminal = pty.spawn(file, args, {
    name: request.env?.TERM ?? 'xterm-256color',
    cols: request.columns,
    rows: request.rows,
    env: { ...HELPER_ENV },
    encoding: null,
  });
  // Output that arrives before the caller listens (the shell's first prompt) is kept for it.
  const pending: Uint8Array[] = [];
  const listeners: ((chunk: Uint8Array) => void)[] = [];
  terminal.onData((data) => {
    const chunk = typeof data === 'string' ? new TextEncoder().encode(data) : new Uint8Array(data);
    if (listeners.length === 0) pending.push(chunk);
    for (const listener of listeners) listener(chunk);
  });
  const exited = new Promise<number>((resolve) => {
    terminal.onExit(({ exitCode, signal }) => {
      const code = signal ? 128 + signal : exitCode;
      if (execGroups) void removeExecCgroups(execGroups).finally(() => resolve(code));
      else resolve(code);
    });
  });
  return {
    // With `encoding: null` node-pty writes bytes as they are; its types only name strings.
    write: (data) => terminal.write((typeof data === 'string' ? data : Buffer.from(data)) as string),
    resize: (columns, rows) => terminal.resize(columns, rows),
    onData: (listener) => {
      listeners.push(listener);
      for (const chunk of pending.splice(0)) listener(chunk);
    },
    exited,
    kill: () => terminal.kill('SIGKILL'),
  };
}

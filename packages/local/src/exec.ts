import type { ExecOutput, ExecRequest } from '@statebox/core';
import { createExecCgroups, isFrozen, killCgroup, removeExecCgroups } from './cgroups.js';
import { enterArgs, HELPER_ENV } from './isolation.js';
import { runProcess } from './processes.js';
import { interruption } from './repair.js';
import type { Sandboxes } from './sandboxes.js';

/**
 * $1 `cgroups` when fds 3-5 are the exec's `cgroup.procs` files to join before anything else runs (they
 * are closed before the command starts), $2 cwd, then the argv. Exits 126 with a clear message when the cwd is missing, as `docker exec` does. */
const execWrapper = `if [ "$1" = cgroups ]; then
  { echo 0 >&3 && echo 0 >&4 && echo 0 >&5; } 2>/dev/null || { echo "statebox: the sandbox stopped while this command was starting" >&2; exit 125; }
  exec 3>&- 4>&- 5>&-
fi
shift
cd -- "$1" 2>/dev/null || { echo "statebox: working directory $1 does not exist in the sandbox" >&2; exit 126; }
shift
exec "$@"`;

/**
 * Runs a command in a running sandbox (restarting an init that died), in control groups of its own
 * when statebox runs as root, so that a timeout or abort ends everything it started. `operation` names
 * the caller in errors: readFile and writeFile run their scripts through here too.
 */
export async function execInSandbox(
  sandboxes: Sandboxes,
  sandboxId: string,
  request: ExecRequest,
  operation: string,
): Promise<ExecOutput> {
  const record = await sandboxes.running(sandboxId, operation);
  const { tools } = await sandboxes.ready();
  const enter = enterArgs(
    tools,
    record.runtime!.initPid,
    record.network,
    sandboxes.environment(record, request.env),
  );
  const argv =
    typeof request.command === 'string' ? ['/bin/sh', '-c', request.command] : [...request.command];
  const groups = record.runtime!.cgroups;
  if (groups && isFrozen(groups.freezer)) await sandboxes.thawIfAbandoned(sandboxId);
  const execGroups = groups ? await createExecCgroups(groups) : undefined;
  try {
    const output = await runProcess({
      file: enter.file,
      // `cd` inside the sandbox: the cwd is a sandbox path, meaningless on the host.
      args: [
        ...enter.args,
        '/bin/sh',
        '-c',
        execWrapper,
        'statebox-exec',
        execGroups ? 'cgroups' : 'none',
        request.cwd,
        ...argv,
      ],
      env: HELPER_ENV,
      extraFds: execGroups?.fds,
      killAlso: execGroups && (() => killCgroup(execGroups)),
      stdin: request.stdin,
      timeoutMs: request.timeoutMs,
      signal: request.signal,
      maxOutputBytes: request.maxOutputBytes,
      onStdout: request.onStdout,
      onStderr: request.onStderr,
      sandboxId,
      operation,
    });
    if (output.exitCode !== 0) {
      const interrupted = await interruption(sandboxes.home, sandboxId, record.runtime!, operation);
      if (interrupted) throw interrupted;
    }
    return output;
  } finally {
    if (execGroups) {
      await execGroups.close();
      // Left in place while a background process the command started still runs in it.
      await removeExecCgroups(execGroups);
    }
  }
}

import type { Sandbox } from '@statebox/core';

/**
 * Suspend keeps memory on Tensorlake (a Firecracker VM snapshot). The emulator keeps it by stopping
 * every process of the backing sandbox with SIGSTOP and continuing them on resume: a process that was
 * counting carries on from where it was, with the same pid and the same memory.
 *
 * The script runs inside the sandbox's own PID namespace (the local provider's), so it sees only that
 * sandbox's processes. It spares PID 1 (the sandbox's init) and its own ancestors: stopping the helper
 * that waits for it would leave the freezing exec itself hanging.
 */
function signalAll(signal: 'STOP' | 'CONT'): string {
  return [
    'keep=" 1 $$ "',
    'p=$$',
    'while [ "$p" -gt 1 ]; do',
    '  p=$(sed -n "s/^PPid:[[:space:]]*//p" /proc/$p/status 2>/dev/null)',
    '  [ -n "$p" ] || break',
    '  keep="$keep$p "',
    'done',
    'for d in /proc/[0-9]*; do',
    // biome-ignore lint/suspicious/noTemplateCurlyInString: shell parameter expansion, not a template.
    '  pid=${d#/proc/}',
    '  case "$keep" in *" $pid "*) continue ;; esac',
    `  kill -${signal} "$pid" 2>/dev/null`,
    'done',
    'exit 0',
  ].join('\n');
}

export async function freeze(sandbox: Sandbox): Promise<void> {
  await runOrThrow(sandbox, signalAll('STOP'), 'freeze');
}

export async function thaw(sandbox: Sandbox): Promise<void> {
  await runOrThrow(sandbox, signalAll('CONT'), 'thaw');
}

async function runOrThrow(sandbox: Sandbox, script: string, what: string): Promise<void> {
  const result = await sandbox.exec(['/bin/sh', '-c', script], { timeoutMs: 30_000 });
  if (result.exitCode !== 0) {
    throw new Error(`could not ${what} the processes of ${sandbox.id}: ${result.stderr}`);
  }
}

import type { BetaRunnableTool } from '@anthropic-ai/sdk/lib/tools/BetaRunnableTool';
import { ToolError } from '@anthropic-ai/sdk/lib/tools/ToolError';
import { sha256 } from '@statebox/adapter-kit';
import type { Sandbox } from '@statebox/core';
import type { z } from 'zod';
import { callName, interruptedMessage, journalFunctions } from './journal.js';
import { script } from './paths.js';
import { field, parseInput, toolInput } from './schema.js';

/** The reference's `BASH_OUTPUT_LIMIT`: only this many bytes of the tail are returned. */
export const BASH_OUTPUT_LIMIT = 100 * 1024;
export const BASH_DEFAULT_TIMEOUT_MS = 120_000;
/**
 * A command of up to this many bytes travels as an argument; a longer one on stdin (Linux caps one
 * argument at 128 KiB).
 */
const ARGV_COMMAND_LIMIT = 96 * 1024;

/** Whether `command` has to travel on stdin. */
function commandOnStdin(command: string): boolean {
  return Buffer.byteLength(command) > ARGV_COMMAND_LIMIT;
}
// biome-ignore lint/suspicious/noControlCharactersInRegex: ANSI escape sequences start with ESC.
const ANSI = /\x1b\[[0-9;?]*[ -/]*[@-~]/g;

export type BashOptions = {
  sandbox: () => Promise<Sandbox>;
  sessionId: string;
  workdir: string;
  env: Record<string, string>;
  defaultTimeoutMs: number;
};

const bashInput = toolInput({ command: field.string, restart: field.boolean, timeout_ms: field.integer });
type BashInput = z.output<typeof bashInput>;

// Calls of one session wait for each other in this process (two toolsets of one session included):
// the state file is read at the start of a call and written at its end.
const queues = new Map<string, Promise<unknown>>();

/**
 * Names bash sets itself, which a restore must not overwrite. Everything else, exported or not, is
 * shell state that the reference's single long-lived shell would have kept.
 */
const specialNames = (
  'BASH BASHOPTS BASHPID COLUMNS LINES DIRSTACK EPOCHREALTIME EPOCHSECONDS EUID FUNCNAME GROUPS HISTCMD ' +
  'HOSTNAME HOSTTYPE LINENO MACHTYPE OPTERR OPTIND OSTYPE PIPESTATUS PPID PWD RANDOM SECONDS SHELLOPTS ' +
  'SHLVL SRANDOM UID _'
).split(' ');
const specialPrefixes = '@(BASH_*|COMP_*|__sb_*)';

/**
 * Bash that sets `__sb_names` to the names of the variables to save and restore. `compgen -v` into a
 * file lists them with no process started (0.04 ms here, where expanding `${!A@}` to `${!_@}` takes
 * 0.5 ms); the expansions remain the way for a bash built without `compgen`.
 */
const listNames = script`
if compgen -v >|"$__sb_state.names" 2>/dev/null; then mapfile -t __sb_all <"$__sb_state.names"
else __sb_all=(${[...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_'].map((c) => `"\${!${c}@}"`).join(' ')}); fi
__sb_names=()
for __sb_n in "\${__sb_all[@]}"; do
  [[ \${__sb_skip[$__sb_n]} || $__sb_n == ${specialPrefixes} ]] || __sb_names+=("$__sb_n")
done
`;

/**
 * The subshell a call runs in, forked (not started: a fork costs ~0.1 ms where starting bash costs
 * ~1.5-3 ms here) from the exec's bash. It restores the session's state (variables, exported or not,
 * functions, `set`/`shopt` options, umask, cwd) from the state file, evals the command at top level,
 * then saves the state and writes the command's status to the status file. Restore and save use
 * builtins only. The parent's variables it inherits are all `__sb_*`, which the save skips.
 *
 * A difference from a shell of its own: `$$` is the parent's pid, so `kill $$` ends the parent (the
 * call fails with the sandbox's text) where the old inner shell reported the session as terminated.
 * Arguments (the parent's): state name, workdir, the command (or `-`: read it from fd 5), restart.
 */
const inner = script`
unset BASH_EXECUTION_STRING
unset -f __sb_start __sb_claim __sb_await __sb_commit __sb_record __sb_prune
declare -A __sb_skip=(${specialNames.map((name) => `[${name}]=1`).join(' ')})
if [[ -s $__sb_state ]]; then
  ${listNames}
  unset "\${__sb_names[@]}" 2>/dev/null
  . "$__sb_state" 2>/dev/null
else
  for __sb_n in "\${!A@}" "\${!a@}"; do
    [[ \${__sb_n^^} == ANTHROPIC_* ]] && unset "$__sb_n" 2>/dev/null
  done
  cd -- "$__sb_workdir" 2>/dev/null
fi
if [[ $__sb_command == - ]]; then __sb_command=$(cat <&5); fi
exec 5<&-
unset __sb_n __sb_all __sb_names
set --
# The options last: after \`set -x\`, only this line's \`+ eval ...\` shows besides the command's own trace.
! declare -F __sb_options >/dev/null || __sb_options 2>/dev/null
eval "$__sb_command"
{ __sb_status=$?; } 2>/dev/null
{
  printf '__sb_options() {\n'; set +o; shopt -p; umask -p; printf '}\n'
  set +euxvC
  unset -f __sb_options
  printf 'cd -- %q 2>/dev/null || cd -- %q\n' "$PWD" "$__sb_workdir"
  ${listNames}
  (( \${#__sb_names[@]} == 0 )) || declare -p -- "\${__sb_names[@]}"
  declare -f
  declare -F -x
} >|"$__sb_state" 2>/dev/null
printf '%s\n' "$__sb_status" >|"$__sb_done"
exit "$__sb_status"
`;

/**
 * The bash the exec runs (argv, so the provider's wrapper `exec`s straight into it). A journaled call
 * (`$5`, its journal name) first claims its id (see journal.ts); an id claimed before is answered from
 * its record, after waiting for the process that runs it, or with `statebox-bash lost`, and nothing
 * runs. Then it runs the subshell above with the session's output file as stdout and stderr, opened for
 * appending (`>>`): a process the command left running appends to it, and what it writes during a
 * later call shows in that call's output, as with the reference's single shell; the file is emptied at
 * the start of every call. No status means an `exit` (or `set -e`) ended the subshell early: like the
 * reference's dead shell, the state is dropped and the next call starts afresh. The answer is
 * `statebox-bash <ok|exit> <status>` and the output's last `BASH_OUTPUT_LIMIT + 1` bytes: read with
 * `read` (NUL-safe, one NUL-free run at a time, bytes counted under LC_ALL=C) while the file is within
 * that, else with `tail`. A journaled call appends it to its claim and renames that to its record
 * before printing it, so a caller that died meanwhile loses nothing.
 *
 * The state is written in place, not renamed into place: a rename costs one more process per call, and
 * only a kill in the few milliseconds of the save (a timeout landing exactly then) can cut it short.
 */
const outer = script`
${journalFunctions}
__sb_dir=\${HOME:-/root}/.statebox/bash
[[ -d $__sb_dir ]] || (umask 077 && mkdir -p -- "$__sb_dir") || exit 125
__sb_call=
if [[ -n $5 ]]; then
  __sb_call=\${HOME:-/root}/.statebox/calls/$1/$5
  __sb_claim "$__sb_call"
  case $? in
  0) ;;
  1)
    __sb_await "$__sb_call" && __sb_record "$__sb_call"
    echo 'statebox-bash lost'; exit 0 ;;
  *) echo "statebox: cannot write the call journal $__sb_call" >&2; exit 125 ;;
  esac
fi
__sb_state=$__sb_dir/$1.state __sb_out=$__sb_dir/$1.out __sb_done=$__sb_dir/$1.status
__sb_workdir=$2 __sb_command=$3
[[ -z $4 ]] || : >"$__sb_state"
: >"$__sb_out"; : >"$__sb_done"
(${inner}) 5<&0 </dev/null >>"$__sb_out" 2>&1
__sb_status=$?
IFS= read -r __sb_x <"$__sb_done" || __sb_x=
if [[ -n $__sb_x ]]; then __sb_head="statebox-bash ok $__sb_x"
else : >"$__sb_state"; __sb_head="statebox-bash exit $__sb_status"; fi
LC_ALL=C
__sb_parts=() __sb_total=0
while (( __sb_total <= ${String(BASH_OUTPUT_LIMIT)} )); do
  IFS= read -r -d '' -n $(( ${String(BASH_OUTPUT_LIMIT + 1)} - __sb_total )) __sb_chunk; __sb_eof=$?
  __sb_parts+=("$__sb_chunk"); (( __sb_total += \${#__sb_chunk} ))
  (( __sb_eof == 0 )) || break
  # A shorter run ended at a NUL, which read consumed.
  (( __sb_total > ${String(BASH_OUTPUT_LIMIT)} )) || (( ++__sb_total ))
done <"$__sb_out"
__sb_answer() {
  printf '%s\n' "$__sb_head"
  if (( __sb_total > ${String(BASH_OUTPUT_LIMIT)} )); then tail -c ${String(BASH_OUTPUT_LIMIT + 1)} -- "$__sb_out"; return; fi
  (( \${#__sb_parts[@]} < 2 )) || printf '%s\0' "\${__sb_parts[@]:0:\${#__sb_parts[@]}-1}"
  printf '%s' "\${__sb_parts[-1]}"
}
if [[ -n $__sb_call ]]; then
  # Recorded first: the answer outlives a caller that died meanwhile. Printed from memory, or from the
  # record when it came from \`tail\`.
  __sb_answer >>"$__sb_call" && __sb_commit "$__sb_call" &&
    (( __sb_total > ${String(BASH_OUTPUT_LIMIT)} )) && __sb_record "$__sb_call"
fi
__sb_answer
`;

/**
 * Arguments: state name, call name, timeout ms. Records that the call timed out, unless it has a record
 * or its owner process still runs.
 */
const timeoutRecord = script`
${journalFunctions}
C=\${HOME:-/root}/.statebox/calls/$1/$2
[[ -f $C && ! -e $C.rec ]] || exit 0
if IFS=' ' read -r o s 2>/dev/null <"$C" && [[ -n $s ]] && __sb_start "$o" && [[ $__sb_t == "$s" ]]; then exit 0; fi
printf 'statebox-bash timeout %s\n' "$3" >>"$C" && __sb_commit "$C"
`;

function abortError(signal: AbortSignal): ToolError {
  const reason = signal.reason instanceof Error ? signal.reason.message : String(signal.reason);
  return new ToolError(`bash: ${reason}`);
}

/** `work`, or the abort of `signal` as a `ToolError`, whichever comes first; `work` runs on. */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(abortError(signal));
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(abortError(signal));
    signal.addEventListener('abort', onAbort, { once: true });
  });
  return Promise.race([work, aborted]).finally(() => signal.removeEventListener('abort', onAbort!));
}

/** The session's name in the sandbox: its id when that is a plain token, else a hash of it. */
export function stateName(sessionId: string): string {
  return /^[A-Za-z0-9_-]{1,100}$/.test(sessionId) ? sessionId : `h-${sha256(sessionId).slice(0, 32)}`;
}

/**
 * Gives session `toSessionId` the bash state of `fromSessionId` inside `sandbox`: after a fork, the child
 * session's shell starts where the parent's stood (cwd, variables, functions). No state, nothing done.
 */
export async function copyBashState(
  sandbox: Sandbox,
  fromSessionId: string,
  toSessionId: string,
): Promise<void> {
  const from = stateName(fromSessionId);
  const to = stateName(toSessionId);
  if (from === to) return;
  await sandbox.exec(
    [
      '/bin/sh',
      '-c',
      script`d="\${HOME:-/root}/.statebox/bash"; [ ! -f "$d/$1.state" ] || cp -p "$d/$1.state" "$d/$2.state"`,
      'sh',
      from,
      to,
    ],
    { cwd: '/' },
  );
}

/** Keeps the last `limit` bytes, starting at a character boundary, like the reference's tail buffer. */
function decodeTail(bytes: Uint8Array, limit: number): { text: string; truncated: boolean } {
  if (bytes.length <= limit) return { text: Buffer.from(bytes).toString('utf8'), truncated: false };
  let start = bytes.length - limit;
  while (start < bytes.length && (bytes[start]! & 0xc0) === 0x80) start++;
  return { text: Buffer.from(bytes.subarray(start)).toString('utf8'), truncated: true };
}

/** Drops every `ANTHROPIC_*` key, in any letter case: they hold the runner's credentials. */
export function scrubEnvironment(env: Record<string, string>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(env).filter(([key]) => !key.toUpperCase().startsWith('ANTHROPIC_')),
  );
}

/**
 * `bash` of `agent_toolset_20260401`: a persistent shell whose state lives in a file inside the
 * sandbox, so it survives suspend and resume and a new runner process. See the module comments.
 */
export function createBashTool(options: BashOptions): BetaRunnableTool<BashInput> {
  const name = stateName(options.sessionId);
  const env = { ...scrubEnvironment(options.env), PS1: '', PS2: '', TERM: 'dumb' };

  /**
   * Runs one call. A journaled call (`call`, its journal name) is not tied to `signal`: a worker that
   * loses its lease stops waiting for it (in `run`), but the command runs on to its end and records
   * its answer, which the next worker finds. Only the timeout ends it.
   */
  async function execute(
    input: BashInput,
    signal: AbortSignal | null | undefined,
    call: string | undefined,
  ): Promise<string> {
    const { restart } = input;
    // bash drops NUL bytes from its input, as the reference's shell reading stdin does; argv cannot hold them.
    const command = input.command?.replaceAll('\0', '');
    if (!command) {
      // Idempotent: a restart run twice leaves the same (empty) state.
      if (restart) {
        const sandbox = await options.sandbox();
        await sandbox.exec(
          ['/bin/sh', '-c', script`rm -f "\${HOME:-/root}/.statebox/bash/$1.state"`, 'sh', name],
          {
            cwd: '/',
          },
        );
        return 'bash session restarted';
      }
      throw new ToolError('bash: command is required');
    }
    const timeoutMs = input.timeout_ms && input.timeout_ms > 0 ? input.timeout_ms : options.defaultTimeoutMs;
    const sandbox = await options.sandbox();
    const argv = [
      '/bin/bash',
      '--noprofile',
      '--norc',
      '-c',
      outer,
      '/bin/bash',
      name,
      options.workdir,
      commandOnStdin(command) ? '-' : command,
      restart === true ? '1' : '',
      call ?? '',
    ];
    let result: Awaited<ReturnType<Sandbox['exec']>>;
    try {
      result = await sandbox.exec(argv, {
        cwd: '/',
        env,
        timeoutMs,
        maxOutputBytes: BASH_OUTPUT_LIMIT + 4096,
        ...(commandOnStdin(command) && { stdin: command }),
        ...(signal && !call && { signal }),
      });
    } catch (error) {
      if (signal?.aborted && !call) throw abortError(signal);
      if ((error as Error | undefined)?.name === 'TimeoutError') {
        if (call) await recordTimeout(sandbox, call, timeoutMs);
        throw new ToolError(`bash: bash command timed out after ${timeoutMs}ms`);
      }
      throw error;
    }
    const bytes = result.stdoutBytes;
    const newline = bytes.indexOf(0x0a);
    const header = newline < 0 ? '' : Buffer.from(bytes.subarray(0, newline)).toString('utf8');
    if (header === 'statebox-bash lost' && call) throw new ToolError(interruptedMessage('bash'));
    const match = /^statebox-bash (ok|exit|timeout) (\d+)$/.exec(header);
    if (!match) {
      throw new ToolError(
        `bash: the sandbox could not run the command (exit ${result.exitCode}): ${result.stderr.trim()}`,
      );
    }
    // An `exit` ended the shell: the reference reports its shell as gone and starts a new one.
    if (match[1] === 'exit') throw new ToolError('bash: bash session terminated');
    if (match[1] === 'timeout') throw new ToolError(`bash: bash command timed out after ${match[2]}ms`);
    const exitCode = Number(match[2]);
    const tail = decodeTail(bytes.subarray(newline + 1), BASH_OUTPUT_LIMIT);
    let output = tail.text.replace(ANSI, '').replace(/\n+$/, '');
    if (tail.truncated) output = `[output truncated]\n${output}`;
    if (exitCode !== 0) throw new ToolError(output || `exit ${exitCode}`);
    return output;
  }

  /**
   * After a journaled call timed out (the provider ended its processes), records the timeout, so that
   * an attempt after this one answers the same. Nothing when another process still owns the call (this
   * attempt was waiting for it). Best effort: without it, the next attempt answers "interrupted".
   */
  async function recordTimeout(sandbox: Sandbox, call: string, timeoutMs: number): Promise<void> {
    await sandbox
      .exec(
        [
          '/bin/bash',
          '--noprofile',
          '--norc',
          '-c',
          timeoutRecord,
          '/bin/bash',
          name,
          call,
          String(timeoutMs),
        ],
        {
          cwd: '/',
          timeoutMs: 30_000,
        },
      )
      .catch(() => undefined);
  }

  return {
    type: 'custom',
    name: 'bash',
    description: 'Run a bash command in a persistent shell. State (cwd, env vars) persists across calls.',
    input_schema: {
      type: 'object',
      properties: {
        command: { type: 'string', description: 'The command to run' },
        restart: { type: 'boolean', description: 'Restart the persistent shell before running' },
        timeout_ms: { type: 'integer', description: 'Per-call timeout in milliseconds' },
      },
    },
    parse: (content: unknown) => parseInput('bash', bashInput, content),
    run: async (input, context) => {
      const signal = context?.signal;
      const call = callName((context as { toolUse?: { id?: unknown } } | undefined)?.toolUse?.id);
      const previous = queues.get(name) ?? Promise.resolve();
      const current = previous
        .catch(() => {})
        .then(() => {
          if (signal?.aborted) throw abortError(signal);
          return execute(input, signal, call);
        });
      const settled = current.catch(() => {});
      queues.set(name, settled);
      try {
        // The queue keeps waiting for a journaled command after its caller gave up: a later call of the
        // session in this process still runs after it, as it would in one shell.
        return await (call && signal ? untilAborted(current, signal) : current);
      } finally {
        if (queues.get(name) === settled) queues.delete(name);
      }
    },
  };
}

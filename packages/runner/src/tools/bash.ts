import { createHash } from 'node:crypto';
import type { BetaRunnableTool } from '@anthropic-ai/sdk/lib/tools/BetaRunnableTool';
import { ToolError } from '@anthropic-ai/sdk/lib/tools/ToolError';
import type { Sandbox } from '@statebox/core';
import { script, shellQuote } from './paths.js';
import { type InputShape, parseInput } from './schema.js';

/** The reference's `BASH_OUTPUT_LIMIT`: only this many bytes of the tail are returned. */
export const BASH_OUTPUT_LIMIT = 100 * 1024;
export const BASH_DEFAULT_TIMEOUT_MS = 120_000;
/**
 * A command whose quoted form is up to this many bytes travels inside the script, in argv; a longer one
 * on stdin (Linux caps one argument at 128 KiB, and the script around it takes ~5 KiB).
 */
const ARGV_COMMAND_LIMIT = 96 * 1024;

/** Whether `command` has to travel on stdin. */
function commandOnStdin(command: string): boolean {
  return Buffer.byteLength(shellQuote(command)) > ARGV_COMMAND_LIMIT;
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

type BashInput = { command?: string; restart?: boolean; timeout_ms?: number };

const shape: InputShape = { command: 'string', restart: 'boolean', timeout_ms: 'integer' };

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
 * The shell a call runs in. It restores the session's state (variables, exported or not, functions,
 * `set`/`shopt` options, umask, cwd) from the state file, evals the command at top level, then saves
 * the state and writes the command's status to the status file. Restore and save use builtins only:
 * the cost over a bare exec is this bash's start and the outer script's `tail`.
 *
 * Its stdout and stderr are the output file, never the exec's pipe: a command that leaves a process
 * running (`server &`, `( while :; do ...; done ) &`) holds that file, not the exec, open.
 * Arguments: state file, status file, workdir, the command (or `-`: read it from fd 5).
 */
const inner = script`
unset BASH_EXECUTION_STRING
__sb_state=$1 __sb_done=$2 __sb_workdir=$3
declare -A __sb_skip=(${specialNames.map((name) => `[${name}]=1`).join(' ')})
if [[ -s $1 ]]; then
  ${listNames}
  unset "\${__sb_names[@]}" 2>/dev/null
  . "$1" 2>/dev/null
else
  for __sb_n in "\${!A@}" "\${!a@}"; do
    [[ \${__sb_n^^} == ANTHROPIC_* ]] && unset "$__sb_n" 2>/dev/null
  done
  cd -- "$3" 2>/dev/null
fi
if [[ $4 == - ]]; then __sb_command=$(cat <&5); exec 5<&-; else __sb_command=$4; fi
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
 * POSIX sh run by the exec (`/bin/sh -c`), arguments quoted into the text. It runs the inner shell with
 * the session's output file as stdout and stderr, opened for appending (`>>`): a process the command
 * left running appends to it, and what it writes during a later call shows in that call's output, as
 * with the reference's single shell; the file is emptied at the start of every call. No status means
 * an `exit` (or `set -e`) ended the shell early: like the reference's dead shell, the state is dropped
 * and the next call starts afresh. Prints `statebox-bash <ok|exit> <status>` and the output's tail.
 *
 * The state is written in place, not renamed into place: a rename costs one more process per call, and
 * only a kill in the few milliseconds of the save (a timeout landing exactly then) can cut it short.
 */
function outerScript(stateName: string, workdir: string, command: string, restart: boolean): string {
  // `- 5<&0`: a command too long for argv arrives on the exec's stdin, handed to the inner shell as fd 5.
  const commandArgument = commandOnStdin(command) ? '- 5<&0' : shellQuote(command);
  return [
    script`d="\${HOME:-/root}/.statebox/bash"`,
    '[ -d "$d" ] || (umask 077 && mkdir -p "$d") || exit 125',
    `s="$d/${stateName}.state"; o="$d/${stateName}.out"; c="$d/${stateName}.status"`,
    restart ? ': >"$s"; : >"$o"; : >"$c"' : ': >"$o"; : >"$c"',
    `/bin/bash --noprofile --norc -c ${shellQuote(inner)} /bin/bash "$s" "$c" ${shellQuote(workdir)} ${commandArgument} </dev/null >>"$o" 2>&1`,
    'r=$?; read -r x <"$c" || x=',
    'if [ -n "$x" ]; then echo "statebox-bash ok $x"; else : >"$s"; echo "statebox-bash exit $r"; fi',
    `exec tail -c ${BASH_OUTPUT_LIMIT + 1} "$o"`,
  ].join('\n');
}

function stateName(sessionId: string): string {
  return /^[A-Za-z0-9_-]{1,100}$/.test(sessionId)
    ? sessionId
    : `h-${createHash('sha256').update(sessionId).digest('hex').slice(0, 32)}`;
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

  async function execute(input: BashInput, signal: AbortSignal | null | undefined): Promise<string> {
    const { restart } = input;
    // bash drops NUL bytes from its input, as the reference's shell reading stdin does; argv cannot hold them.
    const command = input.command?.replaceAll('\0', '');
    if (!command) {
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
    const outer = outerScript(name, options.workdir, command, restart === true);
    let result: Awaited<ReturnType<Sandbox['exec']>>;
    try {
      result = await sandbox.exec(outer, {
        cwd: '/',
        env,
        timeoutMs,
        maxOutputBytes: BASH_OUTPUT_LIMIT + 4096,
        ...(commandOnStdin(command) && { stdin: command }),
        ...(signal && { signal }),
      });
    } catch (error) {
      if (signal?.aborted) {
        const reason = signal.reason instanceof Error ? signal.reason.message : String(signal.reason);
        throw new ToolError(`bash: ${reason}`);
      }
      if ((error as Error | undefined)?.name === 'TimeoutError') {
        throw new ToolError(`bash: bash command timed out after ${timeoutMs}ms`);
      }
      throw error;
    }
    const bytes = result.stdoutBytes;
    const newline = bytes.indexOf(0x0a);
    const header = newline < 0 ? '' : Buffer.from(bytes.subarray(0, newline)).toString('utf8');
    const match = /^statebox-bash (ok|exit) (\d+)$/.exec(header);
    if (!match) {
      throw new ToolError(
        `bash: the sandbox could not run the command (exit ${result.exitCode}): ${result.stderr.trim()}`,
      );
    }
    // An `exit` ended the shell: the reference reports its shell as gone and starts a new one.
    if (match[1] === 'exit') throw new ToolError('bash: bash session terminated');
    const exitCode = Number(match[2]);
    const tail = decodeTail(bytes.subarray(newline + 1), BASH_OUTPUT_LIMIT);
    let output = tail.text.replace(ANSI, '').replace(/\n+$/, '');
    if (tail.truncated) output = `[output truncated]\n${output}`;
    if (exitCode !== 0) throw new ToolError(output || `exit ${exitCode}`);
    return output;
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
    parse: (content: unknown) => parseInput<BashInput>('bash', shape, content),
    run: async (input, context) => {
      const previous = queues.get(name) ?? Promise.resolve();
      const current = previous.catch(() => {}).then(() => execute(input, context?.signal));
      const settled = current.catch(() => {});
      queues.set(name, settled);
      try {
        return await current;
      } finally {
        if (queues.get(name) === settled) queues.delete(name);
      }
    },
  };
}

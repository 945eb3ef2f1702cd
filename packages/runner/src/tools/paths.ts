import { posix } from 'node:path';
import { ToolError } from '@anthropic-ai/sdk/lib/tools/ToolError';
import type { ExecResult, Sandbox } from '@statebox/core';
import { journalFunctions } from './journal.js';
import { script } from './script.js';

export { script };

/**
 * The path policy of the file tools, the same as the SDK reference's (`confineToRoot` in
 * `tools/agent-toolset/fs-util.ts`): a path is absolute or relative to the workdir, `..` is collapsed
 * lexically, then every symlink is resolved (the leaf too, even a dangling one) and the result must lie
 * in the workdir or an allowed root. The difference is where it happens: the reference canonicalises on
 * the host, these tools canonicalise INSIDE the sandbox with GNU `realpath -m`, in the same exec that
 * then does the work, so a check costs no extra round trip to a remote backend.
 */
export type ToolContext = {
  sandbox: () => Promise<Sandbox>;
  workdir: string;
  allowedRoots: readonly string[];
  readOnlyRoots: readonly string[];
  maxFileBytes: number | null;
  /** The session's name in the sandbox (bash state file, call journal). */
  session: string;
};

/**
 * Bash run at the start of every file-tool script. Arguments: workdir, the allowed roots, the read-only
 * roots (each list preceded by its length), the target (empty for "none"), then the tool's own.
 * It canonicalises workdir, roots and target, and sets `T` (the canonical target,
 * or the workdir as given when there is none), `RO` (index of the read-only root holding `T`, or -1).
 * A refusal is written as `E\0<kind>\0<detail>\0` on stdout; success paths start with `K\0`.
 *
 * A path that is already canonical as far as it exists (absolute, no `.`, `..`, `//` or trailing `/`,
 * no symlink among its existing prefixes) is its own `realpath -m`: `canonical` checks that with
 * builtins (a few lstat calls), so one `realpath` process (~1.5 ms here) runs only when some path has a
 * symlink or is not normalised.
 */
const prelude = script`
fail() { printf 'E\0%s\0%s\0' "$1" "$2"; exit 0; }
within() { [[ $2 == / || $1 == "$2" || $1 == "$2"/* ]]; }
canonical() {
  [[ $1 == / ]] && return 0
  [[ $1 == /* && $1 != */ && $1 != *//* && /$1/ != */./* && /$1/ != */../* ]] || return 1
  local rest=\${1#/} prefix=
  while [[ -n $rest ]]; do
    prefix+=/\${rest%%/*}
    if [[ $rest == */* ]]; then rest=\${rest#*/}; else rest=; fi
    [[ -L $prefix ]] && return 1
    [[ -e $prefix ]] || return 0
  done
}
W=$1; shift
NA=$1; shift; A=("\${@:1:NA}"); shift "$NA"
NR=$1; shift; R=("\${@:1:NR}"); shift "$NR"
P=$1; shift
if [[ -z $P ]]; then T=$W; RO=-1; else
  C=("$W" "\${A[@]}" "\${R[@]}" "$P")
  for c in "\${C[@]}"; do canonical "$c" || { C=(); break; }; done
  (( \${#C[@]} )) || mapfile -d '' -t C < <(realpath -m -z -- "$W" "\${A[@]}" "\${R[@]}" "$P" 2>/dev/null)
  if (( \${#C[@]} != 2 + NA + NR )); then
    e=$(realpath -m -- "$P" 2>&1 >/dev/null); fail resolve "$e"
  fi
  T=\${C[1 + NA + NR]}
  # realpath -m leaves a symlink loop unresolved instead of failing with ELOOP.
  [[ -L $T ]] && fail resolve 'Too many levels of symbolic links'
  ok=0; within "$T" "\${C[0]}" && ok=1
  for ((i = 0; i < NA && !ok; i++)); do within "$T" "\${C[1 + i]}" && ok=1; done
  (( ok )) || fail outside ''
  RO=-1
  for ((i = 0; i < NR; i++)); do within "$T" "\${C[1 + NA + i]}" && { RO=$i; break; }; done
fi
`;

export type ScriptResult = {
  /** The `K`-line fields the script printed, or the refusal. */
  fields: string[];
  /** Bytes after the fields. */
  payload: Uint8Array;
  exec: ExecResult;
};

export type ScriptRequest = {
  tool: string;
  /** The path argument as the model gave it; undefined for "the workdir". */
  path?: string | undefined;
  /** Bash run after the prelude, with `T`, `RO` and the tool's arguments in `$@`. */
  body: string;
  args?: readonly string[];
  /** How many NUL-terminated fields follow the leading `K`. */
  fieldCount: number;
  stdin?: string | Uint8Array;
  timeoutMs?: number;
  signal?: AbortSignal | null | undefined;
  /** Whether a read-only root refuses the path (write, edit). */
  refuseReadOnly?: boolean;
  /**
   * The call's journal entry (journal.ts). `check`: a call claimed before is answered from its record
   * before the path policy runs. `claim`: the body claims it (`__sb_claim "$JC"`) where its work
   * starts. Without it `JC` is empty.
   */
  journal?: { call: string; mode: 'check' | 'claim' } | undefined;
};

/** What a script answered from the journal instead of running: a record, or that there is none. */
export class RecordedAnswer extends Error {
  constructor(
    readonly text: string,
    readonly lost: boolean,
  ) {
    super(lost ? 'the call was interrupted' : 'the call was answered before');
  }
}

/**
 * Run before the prelude of a journaled script. Arguments: session, call, mode (`check` or `claim`).
 * Defines `__sb_taken`, which answers a claimed call (`J\0ok\0<record>` or `J\0lost\0`) and exits.
 */
const journalHead = script`
JC=\${HOME:-/root}/.statebox/calls/$1/$2 JM=$3; shift 3
__sb_taken() {
  if __sb_await "$JC"; then printf 'J\0ok\0'; __sb_record "$JC"; fi
  printf 'J\0lost\0'; exit 0
}
__sb_unclaim() { [[ -z $JC ]] || rm -f -- "$JC"; }
if [[ $JM == check ]]; then [[ ! -e $JC && ! -e $JC.rec ]] || __sb_taken; JC=; fi
`;

/** Runs one file-tool script in the sandbox: path policy first, then the tool's body, in one exec. */
export async function runScript(context: ToolContext, request: ScriptRequest): Promise<ScriptResult> {
  const sandbox = await context.sandbox();
  const target = request.path === undefined ? '' : posix.resolve(context.workdir, request.path);
  const journal = request.journal;
  const head = journal ? journalFunctions + journalHead : 'JC=\n__sb_unclaim() { :; }\n';
  const argv = [
    '/bin/bash',
    '--noprofile',
    '--norc',
    '-c',
    head + prelude + request.body,
    `statebox-${request.tool}`,
    ...(journal ? [context.session, journal.call, journal.mode] : []),
    context.workdir,
    String(context.allowedRoots.length),
    ...context.allowedRoots,
    String(context.readOnlyRoots.length),
    ...context.readOnlyRoots,
    target,
    ...(request.args ?? []),
  ];
  const exec = await sandbox.exec(argv, {
    cwd: '/',
    ...(request.stdin !== undefined && { stdin: request.stdin }),
    ...(request.timeoutMs !== undefined && { timeoutMs: request.timeoutMs }),
    ...(request.signal && { signal: request.signal }),
  });
  const bytes = exec.stdoutBytes;
  const fields: string[] = [];
  let offset = 0;
  const wanted = bytes[0] === 0x45 /* E */ ? 3 : bytes[0] === 0x4a /* J */ ? 2 : request.fieldCount + 1;
  while (fields.length < wanted) {
    const end = bytes.indexOf(0, offset);
    if (end < 0) {
      const detail = exec.stderr.trim() || `exit ${exec.exitCode}`;
      throw new ToolError(`${request.tool}: ${detail}`);
    }
    fields.push(Buffer.from(bytes.subarray(offset, end)).toString('utf8'));
    offset = end + 1;
  }
  if (fields[0] === 'J') {
    throw new RecordedAnswer(decodeUtf8(bytes.subarray(offset)), fields[1] === 'lost');
  }
  if (fields[0] === 'E') {
    const [, kind, detail] = fields as [string, string, string];
    const shown = JSON.stringify(request.path ?? '');
    if (kind === 'outside') {
      const permitted =
        context.allowedRoots.length > 0
          ? "the session's working directory and its other permitted directories"
          : "the session's working directory";
      throw new ToolError(`path ${shown} is outside ${permitted}`);
    }
    if (kind === 'resolve') throw new ToolError(fsErrorMessage(detail, `path ${shown}`));
    throw new ToolError(`${request.tool}: ${fsErrorMessage(detail, request.path ?? '')}`);
  }
  if (request.refuseReadOnly) {
    const index = Number(fields.at(-1));
    if (index >= 0) {
      throw new ToolError(
        `${request.tool}: ${request.path} is inside read-only directory ${context.readOnlyRoots[index]}`,
      );
    }
  }
  return { fields: fields.slice(1), payload: bytes.subarray(offset), exec };
}

const errnoTexts: [RegExp, string][] = [
  [/No such file or directory/i, 'no such file or directory'],
  [/Permission denied|Operation not permitted/i, 'permission denied'],
  [/Not a directory/i, 'not a directory'],
  [/Is a directory|cannot overwrite directory/i, 'is a directory'],
  [/Too many levels of symbolic links/i, 'too many levels of symbolic links'],
  [/File name too long/i, 'file name too long'],
  [/No space left on device/i, 'no space left on device'],
  [/Too many open files/i, 'too many open files'],
  [/Read-only file system/i, 'i/o error (EROFS)'],
  [/File exists/i, 'i/o error (EEXIST)'],
  [/Directory not empty/i, 'i/o error (ENOTEMPTY)'],
  [/Invalid cross-device link/i, 'i/o error (EXDEV)'],
  [/Device or resource busy/i, 'i/o error (EBUSY)'],
  [/Invalid argument/i, 'i/o error (EINVAL)'],
  [/Disk quota exceeded/i, 'i/o error (EDQUOT)'],
];

/**
 * The reference's `fsErrorMessage`, keyed on the text a coreutils tool printed instead of a Node errno:
 * the same words whatever the tool and without any path of the sandbox's.
 */
export function fsErrorMessage(stderr: string, file: string): string {
  for (const [pattern, text] of errnoTexts) if (pattern.test(stderr)) return `${file}: ${text}`;
  return `${file}: i/o error`;
}

/** The default `maxFileBytes`, the reference's `DEFAULT_MAX_FILE_BYTES`. */
export const DEFAULT_MAX_FILE_BYTES = 256 * 1024;

/** Decodes like Node's `fs.readFile(path, 'utf8')`: a byte-order mark is kept, bad bytes become U+FFFD. */
export function decodeUtf8(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
}

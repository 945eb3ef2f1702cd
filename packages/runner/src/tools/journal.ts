import { sha256 } from '@statebox/adapter-kit';
import { script } from './script.js';

/**
 * The per-call journal inside the sandbox: `$HOME/.statebox/calls/<session>/`, where a tool call that
 * changes something (bash, edit) leaves `<call>` (its claim) while it runs and `<call>.rec` (its
 * record) once done, `<call>` being its `tool_use` id.
 *
 * A call claims its id by creating `<call>` exclusively (bash's noclobber `>`, an `open` with
 * `O_CREAT|O_EXCL`: exactly one attempt wins, in whichever worker), writing into it its owner (the pid
 * and `/proc` start time of the bash that runs it). It does its work, appends its answer to the claim
 * and renames it to `<call>.rec` (the claim is the temp file: a record is never seen half written),
 * all in the one exec that does the work: builtins but for the `mv`. A claim made after that rename
 * finds the record, is removed, and counts as taken. An attempt that finds the id claimed never runs it again: it
 * answers with the record (after its first line, the owner),
 * waiting while the owner process still runs (bounded by the call's timeout), and when the owner is
 * gone without a record (the sandbox was suspended, which ends processes, or the process was killed)
 * it answers that the call was interrupted and its effect is unknown.
 *
 * The journal lives in the sandbox's filesystem, so it survives suspend, resume and a new runner, and
 * a fork copies it (a child session's ids are its own). The agent can read and change it: that only
 * changes its own session's answers.
 */

/** A `tool_use` id as the API makes them (`toolu_…`, `sevt_…`); anything else is hashed. */
const SAFE_ID = /^[A-Za-z0-9_-]{1,128}$/;

/**
 * The journal name of a call: its `tool_use` id when that is a plain token, else a hash of it, so a
 * hostile id never reaches a path. Undefined without an id (a tool called outside a session runner):
 * the call is not journaled.
 */
export function callName(toolUseId: unknown): string | undefined {
  if (typeof toolUseId !== 'string' || toolUseId === '') return undefined;
  return SAFE_ID.test(toolUseId) ? toolUseId : `h-${sha256(toolUseId).slice(0, 40)}`;
}

/** How many calls a session's journal keeps (the newest); it is pruned at one claim in `PRUNE_EVERY`. */
export const JOURNAL_KEEP = 256;
export const PRUNE_EVERY = 32;

/**
 * Bash functions for a journal, each taking the claim's path (`<journal>/<call>`).
 * `__sb_claim`: 0 claimed (owner written), 1 taken by an earlier attempt, 2 the journal cannot be
 * written. `__sb_await`: for a taken call, waits while its owner runs; 0 when its record is there.
 * `__sb_commit`: renames the claim, to which the caller appended its answer, to `<call>.rec`.
 * `__sb_record`: prints the answer of a record and ends the script.
 * `__sb_prune <journal>`: at one claim in `PRUNE_EVERY` (by bash's `$RANDOM`, so the other claims
 * cost nothing), removes all but the newest `JOURNAL_KEEP` calls with a `find` pipeline. A journal
 * holds about `JOURNAL_KEEP + PRUNE_EVERY` calls; past `JOURNAL_KEEP + 600` with a probability under
 * 10^-8. Claims left without a record go once a day old.
 *
 * A process is its pid plus its start time (field 22 of `/proc/<pid>/stat`, split by `read -a`: the
 * owner is always a `bash`, whose name has no space), so a pid reused after a resume is not taken for
 * the owner. Without `/proc`, `kill -0` decides and the owner's time is `-`.
 * A claim read empty or cut short is one being written: 2 s later it counts as a claimer that died.
 */
export const journalFunctions = script`
__sb_start() {
  local -a f
  if read -r -a f 2>/dev/null </proc/$1/stat; then __sb_t=\${f[21]}; return 0; fi
  [[ ! -e /proc/self/stat ]] && kill -0 "$1" 2>/dev/null && __sb_t=-
}
__sb_claim() {
  [[ -d \${1%/*} ]] || (umask 077 && mkdir -p -- "\${1%/*}") 2>/dev/null || return 2
  __sb_start $$ || __sb_t=-
  local r
  set -C
  { printf '%s %s\n' "$$" "$__sb_t" >"$1"; } 2>/dev/null
  r=$?
  set +C
  if (( r != 0 )); then [[ -e $1 ]] && return 1; return 2; fi
  # Made after a finished attempt had renamed its claim to its record: that attempt answers.
  [[ ! -e $1.rec ]] || { rm -f -- "$1"; return 1; }
  __sb_prune "\${1%/*}"
}
__sb_await() {
  local n=0 o s
  while [[ ! -e $1.rec ]]; do
    if IFS=' ' read -r o s 2>/dev/null <"$1" && [[ -n $s ]]; then
      __sb_start "$o" && [[ $__sb_t == "$s" ]] || break
    elif (( ++n > 40 )); then break
    fi
    sleep 0.05
  done
  [[ -e $1.rec ]]
}
__sb_commit() {
  mv -f -- "$1" "$1.rec"
}
__sb_record() {
  { IFS= read -r __sb_t; exec cat; } <"$1.rec"
}
__sb_prune() {
  (( RANDOM % ${String(PRUNE_EVERY)} == 0 )) || return 0
  local old
  mapfile -d '' -t old < <(find "$1" -mindepth 1 -maxdepth 1 -type f -name '*.rec' -printf '%T@ %f\0' |
    sort -znr | tail -zn +${String(JOURNAL_KEEP + 1)} | cut -zd' ' -f2-)
  (( \${#old[@]} == 0 )) || (cd -- "$1" && rm -f -- "\${old[@]}" "\${old[@]%.rec}")
  # Claims left without a record (interrupted calls), once a day old.
  find "$1" -mindepth 1 -maxdepth 1 -type f ! -name '*.*' -mmin +1440 -delete 2>/dev/null
  return 0
}
`;

/** The answer of a call whose earlier attempt ended without a record. */
export function interruptedMessage(tool: string): string {
  return (
    `${tool}: this call was started before (by a worker that stopped or lost its lease) and its process ` +
    'ended without recording a result (the sandbox was suspended or restarted, or the process was ' +
    'killed): the command was interrupted and its effect is unknown. It was not run again; check the ' +
    'state it was meant to change before running it again.'
  );
}

import { sha256 } from '@statebox/adapter-kit';
import { script } from './script.js';

/**
 * The per-call journal inside the sandbox: `$HOME/.statebox/calls/<session>/<call>/`, one directory
 * per tool call that changes something (bash, edit), named by its `tool_use` id.
 *
 * A call claims its id with `mkdir` (atomic: exactly one attempt wins, in whichever worker), writes
 * `owner` (the pid and `/proc` start time of the bash that runs it), does its work, then writes
 * `record` (what the tool answers) through a temp file and a rename, all in the one exec that does the
 * work. An attempt that finds the id claimed never runs it again: it answers with `record`, waiting
 * while the owner process still runs (bounded by the call's timeout), and when the owner is gone
 * without a record (the sandbox was suspended, which ends processes, or the process was killed) it
 * answers that the call was interrupted and its effect is unknown.
 *
 * The directory lives in the sandbox's filesystem, so it survives suspend, resume and a new runner,
 * and a fork copies it (a child session's ids are its own). The agent can read and change it: that
 * only changes its own session's answers.
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

/** How many calls a session's journal keeps (the newest); it is pruned once it holds `PRUNE_AT`. */
export const JOURNAL_KEEP = 256;
const PRUNE_AT = JOURNAL_KEEP + 32;

/**
 * Bash functions for a journal. `__sb_claim <dir>`: 0 claimed (and `owner` written), 1 taken by an
 * earlier attempt, 2 the journal cannot be written. `__sb_await <dir>`: for a taken call, waits while
 * its owner runs; 0 when a record is there. `__sb_commit <dir>`: renames `<dir>/.record`, written by the caller, to `record`.
 * `__sb_prune <journal>`: past `PRUNE_AT` entries, removes all but the newest `JOURNAL_KEEP` (one glob
 * per claim; the `find` pipeline runs once per 32 calls).
 *
 * A process is its pid plus its start time (field 22 of `/proc/<pid>/stat`), so a pid reused after a
 * resume is not taken for the owner. Without `/proc`, `kill -0` decides and `owner` holds `-`.
 */
export const journalFunctions = script`
__sb_start() {
  local l
  if read -r l 2>/dev/null </proc/$1/stat; then
    l=\${l##*) }; local -a f=($l); __sb_t=\${f[19]}; return 0
  fi
  [[ ! -e /proc/self/stat ]] && kill -0 "$1" 2>/dev/null && __sb_t=-
}
__sb_claim() {
  [[ -d \${1%/*} ]] || (umask 077 && mkdir -p -- "\${1%/*}") 2>/dev/null || return 2
  if ! mkdir -m 700 -- "$1" 2>/dev/null; then [[ -d $1 ]] && return 1; return 2; fi
  __sb_start $$ || __sb_t=-
  printf '%s %s\n' "$$" "$__sb_t" >|"$1/owner" || return 2
  __sb_prune "\${1%/*}"
}
__sb_await() {
  local n=0 o s
  while [[ ! -e $1/record ]]; do
    if IFS=' ' read -r o s 2>/dev/null <"$1/owner" && [[ -n $s ]]; then
      __sb_start "$o" && [[ $__sb_t == "$s" ]] || break
    elif (( ++n > 40 )); then break
    fi
    sleep 0.05
  done
  [[ -e $1/record ]]
}
__sb_commit() {
  mv -f -- "$1/.record" "$1/record"
}
__sb_prune() {
  local e=("$1"/*)
  (( \${#e[@]} < ${String(PRUNE_AT)} )) && return 0
  find "$1" -mindepth 1 -maxdepth 1 -printf '%T@ %f\0' | sort -znr | tail -zn +${String(JOURNAL_KEEP + 1)} |
    cut -zd' ' -f2- | (cd -- "$1" && xargs -0r rm -rf --) 2>/dev/null
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

/**
 * The POSIX shell scripts the adapter runs inside a Tensorlake sandbox through `processes/run`, which
 * is line-oriented text with no stdin. Every caller input reaches them as a separate argv entry
 * (`sh -c SCRIPT statebox ARG…`), never spliced into script text, so no input can be read as shell.
 * They need `base64`, `stat`, `realpath`, `head`, `tail`, `grep -z` (coreutils, GNU grep): present in
 * tensorlake/ubuntu-minimal and any Debian or Ubuntu image.
 */

/** Width of base64 lines in script output: long lines, few events, all under the SDK's SSE limits. */
const WRAP = 65536;

/**
 * exec: `id cwd stdinMode cap stateDir watch K=V… -- argv…`. Runs argv with its stdout and stderr in
 * files, then prints each file's size (after `statebox:`) and its base64 (head and tail only past `cap`):
 * stdout's on stdout, stderr's on stderr, so both come back byte-exact whatever the daemon does to lines.
 * stdinMode: `-` none, `b<base64>` inline, `f` the file `<stateDir>/x/<id>.in` written beforehand.
 *
 * Each process the script starts costs about a millisecond here (benchmarks/README.md, "Where the exec
 * overhead goes"), so the common path starts few: the command (a subshell that execs it), `stat` only
 * when a stream is not empty (into a file read by the `read` builtin, not a command substitution, which
 * would fork once more), `base64` per non-empty stream, and one `rm`.
 *
 * The command and everything it starts carry `STATEBOX_EXEC=<id>` in their environment. With `watch`
 * `1` (the exec has a timeout or a signal) a watchdog started beside it waits for the file
 * `<stateDir>/x/<id>.kill` (which the adapter writes on timeout or abort) and then kills every process
 * with that mark, `setsid` daemons included. The watchdog, not a separate request, does the killing: it
 * shares the command's credentials, so it can read their `/proc/<pid>/environ` wherever it runs (the
 * emulator's backing sandboxes put each request in a user namespace of its own, where another request's
 * processes are unreadable). With `watch` `0` nothing can ask for a kill, so there is no watchdog (and
 * its polling `sleep`) and the command runs in the foreground.
 */
export const EXEC = `
id=$1 cwd=$2 stdin=$3 cap=$4 st=$5 watch=$6
shift 6
d="$st/x/$id"
[ -d "$st/x" ] || mkdir -p "$st/x" || exit 125
if [ -f "$st/env" ]; then . "$st/env"; fi
while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do export "$1"; shift; done
shift
case "$stdin" in
  -) in=/dev/null ;;
  f) in="$d.in" ;;
  *) in="$d.in"; printf '%s' "\${stdin#b}" | base64 -d > "$in" ;;
esac
if ! cd -- "$cwd" 2>"$d.e"; then
  : >"$d.o"
  code=126
elif [ "$watch" = 0 ]; then
  ( STATEBOX_EXEC="$id"; export STATEBOX_EXEC; exec "$@" ) <"$in" >"$d.o" 2>"$d.e"
  code=$?
else
  ( STATEBOX_EXEC="$id"; export STATEBOX_EXEC; exec "$@" ) <"$in" >"$d.o" 2>"$d.e" &
  command=$!
  (
    while [ ! -e "$d.kill" ]; do sleep 0.1; done
    for pass in 1 2 3; do
      for p in /proc/[0-9]*; do
        if grep -qzxF "STATEBOX_EXEC=$id" "$p/environ" 2>/dev/null; then kill -9 "\${p#/proc/}" 2>/dev/null; fi
      done
    done
  ) </dev/null >/dev/null 2>&1 &
  watchdog=$!
  # The shell reports a killed job on stderr: keep that out of the streams.
  { wait "$command"; code=$?; } 2>/dev/null
  # Once asked to kill, the watchdog finishes all its passes (daemons of the command may remain).
  if [ -e "$d.kill" ]; then wait "$watchdog"; else kill "$watchdog" 2>/dev/null; fi
fi
emit() {
  printf 'statebox:%s\\n' "$2"
  if [ "$2" -eq 0 ]; then :
  elif [ "$2" -le "$cap" ]; then base64 -w ${WRAP} "$1"
  else { head -c $(((cap + 1) / 2)) "$1"; tail -c $((cap / 2)) "$1"; } | base64 -w ${WRAP}
  fi
}
if [ -s "$d.o" ] || [ -s "$d.e" ]; then
  stat -c %s "$d.o" "$d.e" >"$d.n" && { read so; read se; } <"$d.n"
else
  so=0 se=0
fi
emit "$d.o" "$so"
emit "$d.e" "$se" >&2
rm -f "$d.o" "$d.e" "$d.n" "$d.in" "$d.kill"
exit "$code"
`;

/**
 * stat: `path inlineMax`. Prints what is at path, following symlinks inside the sandbox: `missing`,
 * `directory`, `special <type>`, or `file <size>`; a file no larger than inlineMax is followed by its
 * base64, so a small read is one request.
 */
export const STAT = `
p=$1
if [ ! -e "$p" ]; then echo missing; exit 0; fi
if [ -d "$p" ]; then echo directory; exit 0; fi
if [ ! -f "$p" ]; then echo "special $(stat -L -c %F -- "$p")"; exit 0; fi
size=$(stat -L -c %s -- "$p") || exit 1
echo "file $size"
if [ "$size" -le "$2" ]; then base64 -w ${WRAP} -- "$p" || exit 1; fi
`;

/**
 * write: `path mode source token data`. Refuses anything but a regular file at path (following
 * symlinks inside the sandbox; exit 3, the type on stdout), creates the parent directories, fills a
 * temporary file beside the target (from base64 `data` when source is `-`, else the staged file `source`,
 * used as it is when it was staged in the target's directory, else moved there) and gives it `mode`
 * (else the old file's mode, else 0644), then renames it over the target: a reader sees the old content
 * or the new, never a mix. `realpath` runs only when the path is a symlink or its parent is not a
 * directory; a new file written inline gets 0644 from the umask, without `chmod`.
 */
export const WRITE = `
p=$1 mode=$2 src=$3
umask 022
t=$p
if [ -L "$t" ] || [ ! -d "\${t%/*}/" ]; then t=$(realpath -m -- "$p") || { echo "unresolvable"; exit 3; }; fi
if [ -e "$t" ] && [ ! -f "$t" ]; then
  if [ -d "$t" ]; then echo directory; else echo "$(stat -L -c %F -- "$t")"; fi
  [ "$src" = "-" ] || rm -f -- "$src"
  exit 3
fi
dir=\${t%/*}
[ -d "$dir/" ] || mkdir -p -- "$dir/" || { [ "$src" = "-" ] || rm -f -- "$src"; exit 4; }
if [ "$src" = "-" ]; then
  tmp="$dir/.statebox-write-$4"
  printf '%s' "$5" | base64 -d >"$tmp" || { rm -f -- "$tmp"; exit 5; }
  [ -n "$mode" ] || [ -f "$t" ] || mode=keep
elif [ "\${src%/*}" = "$dir" ]; then
  tmp=$src
else
  tmp="$dir/.statebox-write-$4"
  mv -f -- "$src" "$tmp" || { rm -f -- "$tmp" "$src"; exit 5; }
fi
case "$mode" in
  keep) ;;
  "") if [ -f "$t" ]; then chmod --reference="$t" "$tmp"; else chmod 644 "$tmp"; fi ;;
  *) chmod "$mode" "$tmp" ;;
esac || { rm -f -- "$tmp"; exit 5; }
mv -f -- "$tmp" "$t" || { rm -f -- "$tmp"; exit 5; }
`;

/**
 * setup: `stateDir workdir envFile`. Creates the workdir and the adapter's directories, and stores
 * create's env (a fresh sandbox has no env file, so none is written when there is no env: one `mkdir`).
 */
export const SETUP = `
mkdir -p -- "$2" "$1/x" || exit 1
[ -z "$3" ] || { printf '%s' "$3" >"$1/env.tmp" && mv -f -- "$1/env.tmp" "$1/env"; }
`;

import type { BetaRunnableTool } from '@anthropic-ai/sdk/lib/tools/BetaRunnableTool';
import { ToolError } from '@anthropic-ai/sdk/lib/tools/ToolError';
import type { z } from 'zod';
import { fsErrorMessage, runScript, script, type ToolContext } from './paths.js';
import { field, parseInput, toolInput } from './schema.js';

const writeInput = toolInput({ file_path: field.string, content: field.string });
type WriteInput = z.output<typeof writeInput>;

/**
 * The reference's `atomicWriteFile` in the sandbox: the content (stdin) goes to a sibling temp file that
 * is created 0600, takes the mode of the file it replaces, and is renamed over it, once it has all its
 * bytes (a caller that died mid-stream leaves the file as it was). New directories are 0700 (umask 077).
 * Arguments: 1 to create missing parent directories, the content's byte count, and for a journaled
 * edit the answer to record (journal.ts): the claim is taken just before the work starts, dropped when
 * the work fails before the rename (nothing changed, so an attempt after this one may run), and the
 * record is written right after the rename. The reference also fsyncs the temp file; that is left out,
 * as an fsync on an overlay upper costs more than a tool call should.
 */
const writeBody = script`
if (( RO < 0 )) && [[ -n $JC ]]; then
  __sb_claim "$JC"
  case $? in
  0) ;;
  1) __sb_taken ;;
  *) echo "statebox: cannot write the call journal $JC" >&2; exit 1 ;;
  esac
fi
printf 'K\0%s\0' "$RO"
(( RO < 0 )) || exit 0
umask 077
d=\${T%/*}; d=\${d:-/}
if [[ $1 == 1 && ! -d $d ]]; then mkdir -p -- "$d" || { __sb_unclaim; exit 1; }; fi
t=$d/.tmp-statebox-$$-$RANDOM$RANDOM
if ! cat >"$t"; then rm -f -- "$t"; __sb_unclaim; exit 1; fi
# One stat: the temp file's size, then the replaced file's mode when there is one.
s=$(stat -c '%s %a' -- "$t" "$T" 2>/dev/null)
n=\${s%% *} m=
[[ $s != *$'\n'* ]] || { m=\${s##*$'\n'}; m=\${m#* }; }
if [[ $n != "$2" ]]; then
  rm -f -- "$t"; __sb_unclaim
  echo "statebox: the content arrived incomplete ($n of $2 bytes)" >&2; exit 1
fi
[[ -z $m ]] || chmod -- "$m" "$t"
mv -fT -- "$t" "$T" || { rm -f -- "$t"; __sb_unclaim; exit 1; }
if [[ -n $JC ]]; then printf '%s' "$3" >>"$JC" && __sb_commit "$JC"; fi
exit 0
`;

/**
 * Writes `content` to `filePath` atomically, after the path policy and the read-only check. `journal`:
 * the edit's call and the answer it records with the write.
 */
export async function writeFileChecked(
  context: ToolContext,
  tool: 'write' | 'edit',
  filePath: string,
  content: string,
  journal?: { call: string; answer: string },
): Promise<void> {
  const result = await runScript(context, {
    tool,
    path: filePath,
    body: writeBody,
    args: [tool === 'write' ? '1' : '0', String(Buffer.byteLength(content)), journal?.answer ?? ''],
    fieldCount: 1,
    stdin: content,
    refuseReadOnly: true,
    journal: journal && { call: journal.call, mode: 'claim' },
  });
  if (result.exec.exitCode !== 0) {
    const prefix = tool === 'edit' ? 'edit: write' : 'write';
    throw new ToolError(`${prefix}: ${fsErrorMessage(result.exec.stderr, filePath)}`);
  }
}

/** `write` of `agent_toolset_20260401`: creates parent directories, replaces the whole file. */
export function createWriteTool(context: ToolContext): BetaRunnableTool<WriteInput> {
  return {
    type: 'custom',
    name: 'write',
    description: 'Write a UTF-8 text file relative to the workdir, creating parent directories as needed.',
    input_schema: {
      type: 'object',
      properties: { file_path: { type: 'string' }, content: { type: 'string' } },
      required: ['file_path', 'content'],
    },
    parse: (content: unknown) => parseInput('write', writeInput, content),
    run: async ({ file_path, content }) => {
      if (!file_path) throw new ToolError('write: file_path is required');
      await writeFileChecked(context, 'write', file_path, content ?? '');
      return `wrote ${Buffer.byteLength(content ?? '')} bytes to ${file_path}`;
    },
  };
}

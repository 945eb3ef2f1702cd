import type { BetaRunnableTool } from '@anthropic-ai/sdk/lib/tools/BetaRunnableTool';
import { ToolError } from '@anthropic-ai/sdk/lib/tools/ToolError';
import type { z } from 'zod';
import { decodeUtf8, fsErrorMessage, runScript, script, type ToolContext } from './paths.js';
import { field, parseInput, toolInput } from './schema.js';

const readInput = toolInput({ file_path: field.string, view_range: field.integers });
type ReadInput = z.output<typeof readInput>;

/**
 * Arguments: limit (-1 for none), then start and end lines of a view range (empty for none).
 * Prints `K\0<S_IFMT in hex>\0<size>\0` and then: the whole file when it is within the limit; the
 * selected lines plus one more (see `sliceLines`) capped just past the limit when it is not and a range
 * was given; nothing otherwise. A FIFO or device is never opened.
 */
export const readBody = script`
# The common case with builtins only: a readable regular file within the limit is read NUL-safely, one
# NUL-free run at a time with bytes counted under LC_ALL=C, capped one byte past the limit. Any other
# case (over the limit, not a regular file, missing, unreadable) goes on to \`stat\` for its size, mode
# or error text.
quick() {
  local LC_ALL=C parts=() total=0 chunk eof cap=$(( $1 < 0 ? -1 : $1 + 1 ))
  while (( cap < 0 || total < cap )); do
    if (( cap < 0 )); then IFS= read -r -d '' chunk; else IFS= read -r -d '' -n $(( cap - total )) chunk; fi
    eof=$?
    parts+=("$chunk"); (( total += \${#chunk} ))
    (( eof == 0 )) || break
    (( cap >= 0 && total >= cap )) || (( ++total ))
  done <"$T" || return 1
  (( cap < 0 || total < cap )) || return 1
  printf 'K\0%s\0%s\0%s\0' 8000 "$total" "$RO"
  (( \${#parts[@]} < 2 )) || printf '%s\0' "\${parts[@]:0:\${#parts[@]}-1}"
  printf '%s' "\${parts[-1]}"
  exit 0
}
[[ -f $T && -r $T ]] && quick "$1"
s=$(stat -c '%f %s' -- "$T" 2>&1) || fail fs "$s"
read -r mode size <<<"$s"
printf 'K\0%s\0%s\0%s\0' "$mode" "$size" "$RO"
(( (16#$mode & 0170000) == 0100000 )) || exit 0
if (( $1 < 0 || size <= $1 )); then exec cat -- "$T"; fi
[[ -n $2 ]] || exit 0
if (( $3 > 0 )); then last=$(( $3 + 1 ))p; else last='$p'; fi
sed -n "$2,$last" -- "$T" | head -c $(( $1 + 2 ))
`;

export type FileContents =
  | { kind: 'file'; text: string; size: number }
  | { kind: 'range'; bytes: Uint8Array; size: number };

/**
 * Stats and reads the file for `read` and `edit`, with the reference's guards and texts. `call`: an
 * edit's journal name; a call claimed before throws its `RecordedAnswer` instead.
 */
export async function readFileChecked(
  context: ToolContext,
  tool: 'read' | 'edit',
  filePath: string,
  range: [number, number] | undefined,
  call?: string,
): Promise<FileContents> {
  const limit = context.maxFileBytes;
  const start = range ? Math.max(1, range[0]) : 0;
  const result = await runScript(context, {
    tool,
    path: filePath,
    body: readBody,
    args: [String(limit ?? -1), range ? String(start) : '', range ? String(range[1]) : ''],
    fieldCount: 3,
    refuseReadOnly: tool === 'edit',
    journal: call ? { call, mode: 'check' } : undefined,
  });
  const [mode, sizeText] = result.fields as [string, string];
  if (result.exec.exitCode !== 0 && result.exec.stderr) {
    throw new ToolError(`${tool}: ${fsErrorMessage(result.exec.stderr, filePath)}`);
  }
  if ((Number.parseInt(mode, 16) & 0o170000) !== 0o100000) {
    throw new ToolError(`${tool}: ${filePath} is not a regular file`);
  }
  const size = Number(sizeText);
  if (limit === null || size <= limit) return { kind: 'file', text: decodeUtf8(result.payload), size };
  if (tool === 'edit') {
    throw new ToolError(
      `edit: ${filePath} is ${size} bytes, exceeds ${limit}-byte limit. ` +
        'The edit tool loads the whole file and cannot modify a file this large.',
    );
  }
  if (!range) {
    throw new ToolError(
      `read: ${filePath} is ${size} bytes, exceeds ${limit}-byte limit. ` +
        'Use the view_range parameter to read specific line ranges, e.g. view_range: [1, 500].',
    );
  }
  return { kind: 'range', bytes: result.payload, size };
}

/** `lines.slice(start - 1, end > 0 ? end : lines.length).join('\n')`, the reference's selection. */
function sliceLines(text: string, startLine: number, endLine: number): string {
  const lines = text.split('\n');
  const start = Math.max(0, startLine - 1);
  const end = endLine > 0 ? endLine : lines.length;
  return lines.slice(start, end).join('\n');
}

/**
 * Lines `[startLine, endLine]` out of `sed -n 'start,(end+1)p'`, split and joined like the reference
 * (the extra line tells whether line `end` ended with a newline that the join leaves out), and capped
 * like its `LineRangeCollector`, with the same texts.
 */
function selectRange(
  bytes: Uint8Array,
  filePath: string,
  startLine: number,
  endLine: number,
  limit: number,
): string {
  const start = Math.max(0, startLine - 1);
  const end = endLine > 0 ? endLine : Number.POSITIVE_INFINITY;
  if (end <= start) return '';
  const text = decodeUtf8(bytes);
  const selected = Number.isFinite(end)
    ? text
        .split('\n')
        .slice(0, end - start)
        .join('\n')
    : text;
  if (Buffer.byteLength(selected) > limit) {
    if (end - start === 1) {
      throw new ToolError(
        `read: line ${start + 1} of ${filePath} alone exceeds ${limit}-byte limit. ` +
          'The read tool cannot return part of a line, so view_range cannot narrow this further.',
      );
    }
    throw new ToolError(
      `read: view_range [${startLine}, ${endLine}] of ${filePath} exceeds ${limit}-byte limit. ` +
        'Narrow the view_range to read a smaller portion.',
    );
  }
  return selected;
}

/** `read` of `agent_toolset_20260401`: raw UTF-8 text, no line numbers. */
export function createReadTool(context: ToolContext): BetaRunnableTool<ReadInput> {
  return {
    type: 'custom',
    name: 'read',
    description: 'Read a UTF-8 text file relative to the workdir.',
    input_schema: {
      type: 'object',
      properties: {
        file_path: { type: 'string' },
        view_range: {
          type: 'array',
          items: { type: 'integer' },
          description: '[start_line, end_line] 1-indexed inclusive',
        },
      },
      required: ['file_path'],
    },
    parse: (content: unknown) => parseInput('read', readInput, content),
    run: async ({ file_path, view_range }) => {
      if (!file_path) throw new ToolError('read: file_path is required');
      if (view_range?.length && view_range.length !== 2) {
        throw new ToolError('read: view_range must be [start_line, end_line]');
      }
      const range = view_range?.length ? (view_range as [number, number]) : undefined;
      const contents = await readFileChecked(context, 'read', file_path, range);
      if (!range) return contents.kind === 'file' ? contents.text : '';
      if (contents.kind === 'file') return sliceLines(contents.text, range[0], range[1]);
      return selectRange(contents.bytes, file_path, range[0], range[1], context.maxFileBytes ?? Infinity);
    },
  };
}

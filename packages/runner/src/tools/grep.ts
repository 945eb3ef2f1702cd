import type { BetaRunnableTool } from '@anthropic-ai/sdk/lib/tools/BetaRunnableTool';
import { ToolError } from '@anthropic-ai/sdk/lib/tools/ToolError';
import type { z } from 'zod';
import { decodeUtf8, runScript, script, type ToolContext } from './paths.js';
import { field, parseInput, toolInput } from './schema.js';

const grepInput = toolInput({ pattern: field.string, path: field.string });
type GrepInput = z.output<typeof grepInput>;

export const GREP_OUTPUT_LIMIT = 100 * 1024;
const GREP_TIMEOUT_MS = 60_000;

/**
 * Arguments: the pattern. Searches `T` with the first `rg` on the sandbox's PATH whose real path is
 * outside the workdir and the allowed roots (the agent can write there), run exactly as the reference
 * runs it; without one, with GNU `grep -rnHI` and PCRE (`-P`, the closest to the reference walker's
 * JavaScript regex), or ERE (`-E`) where grep lacks PCRE. Prints `K\0<rg|grep-P|grep-E>\0`, then the
 * first bytes of the output, one past the cap; the exit status is the search's.
 */
const grepBody = script`
g=$(command -v rg 2>/dev/null)
if [[ -n $g ]]; then
  g=$(realpath -e -- "$g" 2>/dev/null) || g=
  if [[ -n $g ]]; then
    for r in "$W" "\${A[@]}"; do within "$g" "$(realpath -m -- "$r")" && { g=; break; }; done
  fi
fi
if [[ -n $g ]]; then
  printf 'K\0rg\0'
  (exec -a rg "$g" --no-config -n --no-heading -e "$1" -- "$T") | head -c ${String(GREP_OUTPUT_LIMIT + 1)}
  exit "\${PIPESTATUS[0]}"
fi
flavour=-P; grep -P -q x /dev/null 2>/dev/null; (( $? == 2 )) && flavour=-E
printf 'K\0grep%s\0' "$flavour"
grep -rnHIs --exclude-dir=.git --exclude-dir=node_modules "$flavour" -e "$1" -- "$T" |
  head -c ${String(GREP_OUTPUT_LIMIT + 1)}
exit "\${PIPESTATUS[0]}"
`;

/** Output of the `grep` fallback shaped like the reference walker's: whole lines, then its note. */
function shapeWalkerOutput(output: string): string {
  const lines = output.replace(/\n$/, '').split('\n');
  if (Buffer.byteLength(output) <= GREP_OUTPUT_LIMIT) return lines.join('\n');
  const kept: string[] = [];
  let budget = GREP_OUTPUT_LIMIT;
  for (const line of lines) {
    budget -= line.length + 1;
    if (budget < 0) break;
    kept.push(line);
  }
  kept.push(`[output truncated at ${GREP_OUTPUT_LIMIT} bytes]`);
  return kept.join('\n');
}

/** `grep` of `agent_toolset_20260401`: `file:line:text` lines, searched inside the sandbox. */
export function createGrepTool(context: ToolContext): BetaRunnableTool<GrepInput> {
  return {
    type: 'custom',
    name: 'grep',
    description: 'Search file contents for a regex. Uses ripgrep if available, otherwise a built-in walker.',
    input_schema: {
      type: 'object',
      properties: { pattern: { type: 'string' }, path: { type: 'string' } },
      required: ['pattern'],
    },
    parse: (content: unknown) => parseInput('grep', grepInput, content),
    run: async ({ pattern, path }, runContext) => {
      if (!pattern) throw new ToolError('grep: pattern is required');
      let result: Awaited<ReturnType<typeof runScript>>;
      try {
        result = await runScript(context, {
          tool: 'grep',
          path: path || undefined,
          body: grepBody,
          args: [pattern],
          fieldCount: 1,
          timeoutMs: GREP_TIMEOUT_MS,
          signal: runContext?.signal,
        });
      } catch (error) {
        if (runContext?.signal?.aborted) throw new ToolError('grep: aborted');
        if ((error as Error | undefined)?.name === 'TimeoutError') {
          throw new ToolError(`grep: timed out after ${GREP_TIMEOUT_MS / 1000}s`);
        }
        throw error;
      }
      const engine = result.fields[0];
      const { exitCode, stderr } = result.exec;
      const output = decodeUtf8(result.payload);
      if (engine === 'rg') {
        if (result.payload.length > GREP_OUTPUT_LIMIT) {
          return `${decodeUtf8(result.payload.subarray(0, GREP_OUTPUT_LIMIT))}\n[output truncated at ${GREP_OUTPUT_LIMIT} bytes]`;
        }
        if (exitCode === 0) return output;
        if (exitCode === 1) return 'no matches';
        throw new ToolError(`grep: rg failed: ${stderr || `exit ${exitCode}`}`);
      }
      // grep exits 2 for an unreadable file too (`-s` hides its message), after printing what it found.
      if (output.length > 0) return shapeWalkerOutput(output);
      if (exitCode === 2 && stderr) {
        // The reference walker compiles a JavaScript RegExp: its error, when that is what fails too.
        try {
          new RegExp(pattern);
        } catch (error) {
          throw new ToolError(`grep: invalid regex: ${(error as Error).message}`);
        }
        throw new ToolError(`grep: invalid regex: ${stderr.trim().replace(/^grep: /, '')}`);
      }
      return 'no matches';
    },
  };
}

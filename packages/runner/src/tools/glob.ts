import { posix } from 'node:path';
import type { BetaRunnableTool } from '@anthropic-ai/sdk/lib/tools/BetaRunnableTool';
import { ToolError } from '@anthropic-ai/sdk/lib/tools/ToolError';
import type { z } from 'zod';
import { decodeUtf8, runScript, script, type ToolContext } from './paths.js';
import { field, parseInput, toolInput } from './schema.js';

const globInput = toolInput({ pattern: field.string, path: field.string });
type GlobInput = z.output<typeof globInput>;

export const GLOB_RESULT_LIMIT = 200;
/** The reference's `WALK_MAX_ENTRIES`. */
const WALK_MAX_ENTRIES = 50_000;
const GLOB_TIMEOUT_MS = 60_000;

/**
 * Argument: the directory under the root to start at (the pattern's literal leading directories).
 * Lists regular files, not following symlinks and pruning `.git` and `node_modules`, as
 * `<mtime>\t<path>\0`; the pattern is matched on this side with Node's own `path.matchesGlob`, the
 * matcher behind the `fs.glob` the reference uses.
 */
const globBody = script`
printf 'K\0%s\0' "$T"
cd -- "$T" 2>/dev/null || exit 0
[[ -d $1 ]] || exit 0
find "$1" \( -name .git -o -name node_modules \) -prune -o -type f -printf '%T@\t%p\0' 2>/dev/null |
  head -z -n ${String(WALK_MAX_ENTRIES)}
`;

/** Best-effort like the reference's `patternCanAscend`: a literal or brace-expanded `..`. */
function patternCanAscend(pattern: string): boolean {
  return pattern.split(/[\\/{},]/).includes('..');
}

/**
 * The pattern's leading directories that hold no glob syntax, where the walk can start. It stops before
 * `.git` and `node_modules`, which the walk then prunes, as the reference's `exclude` does.
 */
function literalPrefix(pattern: string): string {
  const segments = pattern.split('/');
  const literal: string[] = [];
  for (const segment of segments.slice(0, -1)) {
    if (/[*?[\]{}()!+@\\]/.test(segment) || ['', '.', '.git', 'node_modules'].includes(segment)) break;
    literal.push(segment);
  }
  return literal.length === 0 ? '.' : `./${literal.join('/')}`;
}

/** `glob` of `agent_toolset_20260401`: newest first, at most 200 absolute paths. */
export function createGlobTool(context: ToolContext): BetaRunnableTool<GlobInput> {
  return {
    type: 'custom',
    name: 'glob',
    description:
      'Match files under the workdir against a glob pattern. Results are mtime-sorted, newest first.',
    input_schema: {
      type: 'object',
      properties: {
        pattern: { type: 'string' },
        path: { type: 'string', description: 'Directory to search in. Defaults to the workdir.' },
      },
      required: ['pattern'],
    },
    parse: (content: unknown) => parseInput('glob', globInput, content),
    run: async ({ pattern, path: searchPath }, runContext) => {
      if (!pattern) throw new ToolError('glob: pattern is required');
      if (posix.isAbsolute(pattern)) {
        throw new ToolError(
          'glob: absolute pattern not permitted; pass a relative pattern (and optionally path)',
        );
      }
      if (patternCanAscend(pattern)) throw new ToolError('glob: ".." is not permitted in the pattern');
      // `fs.glob` reads `./x` as `x`; `path.matchesGlob` would not match it.
      const normalized = pattern.replace(/^(\.\/)+/, '');
      const result = await runScript(context, {
        tool: 'glob',
        path: searchPath || undefined,
        body: globBody,
        args: [literalPrefix(normalized)],
        fieldCount: 1,
        timeoutMs: GLOB_TIMEOUT_MS,
        signal: runContext?.signal,
      });
      // Without `path`, the reference prints paths under the workdir as configured, not canonicalised.
      const root = searchPath ? result.fields[0]! : posix.resolve(context.workdir);
      const matches: { path: string; mtime: number }[] = [];
      for (const entry of decodeUtf8(result.payload).split('\0')) {
        const tab = entry.indexOf('\t');
        if (tab < 0) continue;
        const relative = entry.slice(tab + 1).replace(/^\.\//, '');
        if (!posix.matchesGlob(relative, normalized)) continue;
        matches.push({ path: posix.join(root, relative), mtime: Number(entry.slice(0, tab)) });
      }
      if (matches.length === 0) return 'no matches';
      matches.sort((a, b) => b.mtime - a.mtime);
      return matches
        .slice(0, GLOB_RESULT_LIMIT)
        .map((match) => match.path)
        .join('\n');
    },
  };
}

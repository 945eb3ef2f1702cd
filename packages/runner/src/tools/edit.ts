import type { BetaRunnableTool } from '@anthropic-ai/sdk/lib/tools/BetaRunnableTool';
import { ToolError } from '@anthropic-ai/sdk/lib/tools/ToolError';
import type { z } from 'zod';
import { callName, interruptedMessage } from './journal.js';
import { RecordedAnswer, type ToolContext } from './paths.js';
import { readFileChecked } from './read.js';
import { field, parseInput, toolInput } from './schema.js';
import { writeFileChecked } from './write.js';

const editInput = toolInput({
  file_path: field.string,
  old_string: field.string,
  new_string: field.string,
  replace_all: field.boolean,
});
type EditInput = z.output<typeof editInput>;

/**
 * `edit` of `agent_toolset_20260401`: a literal, unique (or `replace_all`) replacement. Journaled
 * (journal.ts): applied again after it took effect, an edit would fail with "old_string not found", so
 * an attempt that finds its call claimed answers from the record instead. The read checks the journal
 * first; the write claims the call and records the answer in the exec that renames the file.
 */
export function createEditTool(context: ToolContext): BetaRunnableTool<EditInput> {
  return {
    type: 'custom',
    name: 'edit',
    description:
      'Replace old_string with new_string in a file. old_string must be unique unless replace_all.',
    input_schema: {
      type: 'object',
      properties: {
        file_path: { type: 'string' },
        old_string: { type: 'string' },
        new_string: { type: 'string' },
        replace_all: { type: 'boolean' },
      },
      required: ['file_path', 'old_string', 'new_string'],
    },
    parse: (content: unknown) => parseInput('edit', editInput, content),
    run: async ({ file_path, old_string, new_string = '', replace_all }, runContext) => {
      if (!file_path) throw new ToolError('edit: file_path is required');
      if (!old_string) throw new ToolError('edit: old_string is required');
      const call = callName((runContext as { toolUse?: { id?: unknown } } | undefined)?.toolUse?.id);
      try {
        const contents = await readFileChecked(context, 'edit', file_path, undefined, call);
        if (contents.kind !== 'file') throw new ToolError(`edit: ${file_path} is not a regular file`);
        const data = contents.text;
        const count = data.split(old_string).length - 1;
        if (count === 0) throw new ToolError(`edit: old_string not found in ${file_path}`);
        let updated: string;
        if (replace_all) {
          updated = data.split(old_string).join(new_string);
        } else {
          if (count > 1) {
            throw new ToolError(`edit: old_string appears ${count} times in ${file_path} (must be unique)`);
          }
          // The callback keeps `$&`, `$1` and `` $` `` in new_string literal.
          updated = data.replace(old_string, () => new_string);
        }
        const answer = `edited ${file_path} (${replace_all ? count : 1} replacement(s))`;
        await writeFileChecked(context, 'edit', file_path, updated, call ? { call, answer } : undefined);
        return answer;
      } catch (error) {
        // An earlier attempt of this call claimed it: its answer, or that it was interrupted.
        if (!(error instanceof RecordedAnswer)) throw error;
        if (error.lost) throw new ToolError(interruptedMessage('edit'));
        return error.text;
      }
    },
  };
}

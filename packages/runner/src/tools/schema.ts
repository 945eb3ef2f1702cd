import { ToolError } from '@anthropic-ai/sdk/lib/tools/ToolError';
import { z } from 'zod';

const isInteger = (value: number) => Number.isInteger(value);

/**
 * The field types tool inputs use, each failing with the phrase its `ToolError` ends with. Integers are
 * checked with `Number.isInteger`, not `z.int()`, which would also refuse integers past 2^53.
 */
export const field = {
  string: z.string({ error: 'must be a string' }),
  boolean: z.boolean({ error: 'must be a boolean' }),
  integer: z.number({ error: 'must be an integer' }).refine(isInteger, 'must be an integer'),
  integers: z.array(
    z.number({ error: 'must be an array of integers' }).refine(isInteger, 'must be an array of integers'),
    { error: 'must be an array of integers' },
  ),
};

/** `null` counts as absent, as models send it so. */
function dropNulls(content: unknown): unknown {
  if (typeof content !== 'object' || content === null || Array.isArray(content)) return content;
  return Object.fromEntries(
    Object.entries(content).filter(([, value]) => value !== null && value !== undefined),
  );
}

/**
 * A tool's input schema: every field optional (a missing required field is left to `run`, which answers
 * with the reference's own `<tool>: <field> is required`), `null` read as absent, unknown keys dropped.
 */
export function toolInput<Shape extends Record<string, z.ZodType>>(shape: Shape) {
  const optional = Object.fromEntries(Object.entries(shape).map(([key, type]) => [key, type.optional()]));
  return z.preprocess(dropNulls, z.object(optional as { [K in keyof Shape]: z.ZodOptional<Shape[K]> }));
}

/**
 * Checks a tool's input. The reference's `parse` passes anything through and lets `run` trip over it (a
 * number as `file_path` surfaces as a `TypeError`); this one answers with a `ToolError` naming the field,
 * the first wrong one in the input's own key order.
 */
export function parseInput<Schema extends z.ZodType>(
  tool: string,
  schema: Schema,
  content: unknown,
): z.output<Schema> {
  const result = schema.safeParse(content);
  if (result.success) return result.data;
  const order = typeof content === 'object' && content !== null ? Object.keys(content) : [];
  const position = (issue: z.core.$ZodIssue) => order.indexOf(String(issue.path[0]));
  const [issue] = [...result.error.issues].sort((a, b) => position(a) - position(b));
  if (!issue || issue.path.length === 0) throw new ToolError(`${tool}: input must be an object`);
  throw new ToolError(`${tool}: ${String(issue.path[0])} ${issue.message}`);
}

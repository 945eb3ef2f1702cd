import { ToolError } from '@anthropic-ai/sdk/lib/tools/ToolError';

export type FieldType = 'string' | 'boolean' | 'integer' | 'integer[]';
export type InputShape = Record<string, FieldType>;

function matches(value: unknown, type: FieldType): boolean {
  switch (type) {
    case 'string':
      return typeof value === 'string';
    case 'boolean':
      return typeof value === 'boolean';
    case 'integer':
      return Number.isInteger(value);
    case 'integer[]':
      return Array.isArray(value) && value.every((item) => Number.isInteger(item));
  }
}

/**
 * Checks a tool's input against its `input_schema`. The reference's `parse` passes anything through and
 * lets `run` trip over it (a number as `file_path` surfaces as a `TypeError`); this one answers with a
 * `ToolError` naming the field instead. A missing required field is left to `run`, which answers with
 * the reference's own `<tool>: <field> is required`. `null` counts as absent, as models send it so.
 */
export function parseInput<T>(tool: string, shape: InputShape, content: unknown): T {
  if (typeof content !== 'object' || content === null || Array.isArray(content)) {
    throw new ToolError(`${tool}: input must be an object`);
  }
  const input: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(content)) {
    const type = shape[key];
    if (type === undefined || value === null || value === undefined) continue;
    if (!matches(value, type)) {
      const expected =
        type === 'integer[]' ? 'an array of integers' : `a${type === 'integer' ? 'n' : ''} ${type}`;
      throw new ToolError(`${tool}: ${key} must be ${expected}`);
    }
    input[key] = value;
  }
  return input as T;
}

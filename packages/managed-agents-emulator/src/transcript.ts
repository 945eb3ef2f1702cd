/** What a tool result must look like for a scripted step to pass. All given conditions must hold. */
export interface StepExpectation {
  /** The result's `is_error` must equal this. */
  isError?: boolean;
  /** The result text must contain this string, or every string of the array. */
  contains?: string | string[];
  /** The result text must not contain this string. */
  notContains?: string;
  /** The result text must equal this exactly (after joining text blocks). */
  equals?: string;
  /** The result text must match this regular expression (source, no flags). */
  matches?: string;
}

/** A built-in (`agent.tool_use`) or custom (`agent.custom_tool_use`) tool call the scripted agent makes. */
export interface ToolUseStep {
  type: 'tool_use';
  /** `bash`, `read`, `write`, `edit`, `glob`, `grep`, or a custom tool's name. */
  name: string;
  input: Record<string, unknown>;
  /** Emit `agent.custom_tool_use` (answered with `user.custom_tool_result`) instead of `agent.tool_use`. */
  custom?: boolean;
  expect?: StepExpectation;
}

/**
 * Several tool calls in one step: every `agent.tool_use` is emitted, then one `requires_action` idle
 * naming them all, and the step waits for every result (each gets its own `StepResult`).
 */
export interface ParallelToolUseStep {
  type: 'tool_uses';
  calls: ToolUseStep[];
}

export interface MessageStep {
  type: 'message';
  text: string;
}

export interface ThinkingStep {
  type: 'thinking';
}

export type TranscriptStep = ToolUseStep | ParallelToolUseStep | MessageStep | ThinkingStep;

/** What a transcript function receives: the user message that started the turn. */
export interface TurnContext {
  sessionId: string;
  /** Text of the user message (text blocks joined with newlines). */
  text: string;
  metadata: Record<string, string>;
  /** Results of the steps played so far in this turn, for transcripts that branch on them. */
  results: ReadonlyArray<StepResult>;
}

/**
 * A scripted turn. `steps` is either a fixed list or a function called before each step with the turn so far,
 * returning the next step or `undefined` to end the turn (tests use it to branch on earlier results).
 */
export interface Transcript {
  name: string;
  /** Regular expression (source) tested against the user message text to select this transcript. */
  match?: string;
  steps: TranscriptStep[] | ((context: TurnContext) => TranscriptStep | undefined);
}

/** The record of one played step, as `report()` returns it. */
export interface StepResult {
  transcript: string;
  index: number;
  type: TranscriptStep['type'];
  /** Tool name for tool steps. */
  name?: string;
  input?: Record<string, unknown>;
  /** Id of the `agent.tool_use` / `agent.custom_tool_use` / `agent.message` event. */
  eventId?: string;
  custom?: boolean;
  /** Result text (text blocks joined with newlines); `undefined` until answered. */
  content?: string;
  /** The raw result content blocks. */
  contentBlocks?: unknown[];
  isError?: boolean;
  /** `true` when no expectation was given or all held; `false` with a `reason` otherwise. */
  pass: boolean;
  reason?: string;
  /** Set when the step was never answered (interrupt, archive, emulator closed). */
  unanswered?: boolean;
}

/** Check a result against an expectation; returns the failure reason or `undefined` when it passes. */
export function checkExpectation(
  expectation: StepExpectation | undefined,
  text: string,
  isError: boolean,
): string | undefined {
  if (!expectation) return undefined;
  if (expectation.isError !== undefined && expectation.isError !== isError) {
    return `expected is_error ${expectation.isError}, got ${isError}`;
  }
  const contains =
    expectation.contains === undefined
      ? []
      : Array.isArray(expectation.contains)
        ? expectation.contains
        : [expectation.contains];
  for (const needle of contains) {
    if (!text.includes(needle)) return `expected the result to contain ${JSON.stringify(needle)}`;
  }
  if (expectation.notContains !== undefined && text.includes(expectation.notContains)) {
    return `expected the result not to contain ${JSON.stringify(expectation.notContains)}`;
  }
  if (expectation.equals !== undefined && text !== expectation.equals) {
    return `expected the result to equal ${JSON.stringify(expectation.equals)}`;
  }
  if (expectation.matches !== undefined && !new RegExp(expectation.matches).test(text)) {
    return `expected the result to match /${expectation.matches}/`;
  }
  return undefined;
}

/** Text of a content block array: text blocks joined with newlines, other blocks as `[type]`. */
export function contentText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content
    .map((block) => {
      if (block && typeof block === 'object' && (block as { type?: unknown }).type === 'text') {
        return String((block as { text?: unknown }).text ?? '');
      }
      return `[${String((block as { type?: unknown })?.type ?? 'unknown')}]`;
    })
    .join('\n');
}

/** Validate a transcript loaded from JSON; throws a message naming the file and the problem. */
export function parseTranscript(value: unknown, source: string): Transcript {
  if (!value || typeof value !== 'object') throw new Error(`${source}: a transcript must be a JSON object`);
  const record = value as Record<string, unknown>;
  if (typeof record.name !== 'string' || record.name === '') {
    throw new Error(`${source}: "name" must be a non-empty string`);
  }
  if (record.match !== undefined && typeof record.match !== 'string') {
    throw new Error(`${source}: "match" must be a regular expression string`);
  }
  if (!Array.isArray(record.steps)) throw new Error(`${source}: "steps" must be an array`);
  record.steps.forEach((step, index) => {
    const type = (step as { type?: unknown })?.type;
    if (type !== 'tool_use' && type !== 'tool_uses' && type !== 'message' && type !== 'thinking') {
      throw new Error(`${source}: steps[${index}].type must be tool_use, tool_uses, message or thinking`);
    }
    if (type === 'tool_uses') {
      const calls = (step as { calls?: unknown }).calls;
      if (
        !Array.isArray(calls) ||
        calls.length === 0 ||
        calls.some((call) => typeof call?.name !== 'string')
      ) {
        throw new Error(`${source}: steps[${index}].calls must be a non-empty array of tool_use steps`);
      }
    }
    if (type === 'tool_use' && typeof (step as { name?: unknown }).name !== 'string') {
      throw new Error(`${source}: steps[${index}].name must be a string`);
    }
    if (type === 'message' && typeof (step as { text?: unknown }).text !== 'string') {
      throw new Error(`${source}: steps[${index}].text must be a string`);
    }
  });
  return record as unknown as Transcript;
}

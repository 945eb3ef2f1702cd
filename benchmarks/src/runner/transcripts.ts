import type { ToolUseStep, Transcript } from '@statebox/managed-agents-emulator';

/** The file the `read` overhead figures read: small, so the figure is the per-call cost, not transfer. */
export const SMALL_FILE = '/workspace/small.txt';
export const SMALL_CONTENT = `${'statebox runner benchmark\n'.repeat(40)}`;

export const OVERHEAD_TRANSCRIPT = 'runner-bench-overhead';
export const SESSION_TRANSCRIPT = 'runner-bench-session';

/**
 * The overhead session's turns, chosen by the message: `setup` writes the small file and warms bash up;
 * `bash <n>` is n calls of `true`; `read <n>` is n reads of the small file. Every result is checked.
 */
export const overheadTranscript: Transcript = {
  name: OVERHEAD_TRANSCRIPT,
  steps: ({ text, results }) => {
    const [kind, count] = text.split(' ');
    if (kind === 'setup') {
      const setup: ToolUseStep[] = [
        {
          type: 'tool_use',
          name: 'write',
          input: { file_path: SMALL_FILE, content: SMALL_CONTENT },
          expect: { equals: `wrote ${Buffer.byteLength(SMALL_CONTENT)} bytes to ${SMALL_FILE}` },
        },
        ...Array.from({ length: 5 }, (): ToolUseStep => bashTrue),
        ...Array.from({ length: 5 }, (): ToolUseStep => readSmall),
      ];
      return setup[results.length];
    }
    if (results.length >= Number(count)) return undefined;
    return kind === 'bash' ? bashTrue : readSmall;
  },
};

// The SDK posts an empty tool result as the text `(no output)`.
const bashTrue: ToolUseStep = {
  type: 'tool_use',
  name: 'bash',
  input: { command: 'true' },
  expect: { matches: '^(\\(no output\\))?$' },
};
const readSmall: ToolUseStep = {
  type: 'tool_use',
  name: 'read',
  input: { file_path: SMALL_FILE },
  expect: { equals: SMALL_CONTENT },
};

/**
 * One session of the concurrency run: 11 calls over all six tools, in a directory of its own, with
 * the session's tag in files, variables and checks, so a result from another session's sandbox, a
 * lost cwd or variable, or a stale file fails its `expect`. The message is `session <tag>`.
 */
export function sessionSteps(tag: string): ToolUseStep[] {
  const dir = '/workspace/project';
  const notes = `session ${tag}\nalpha\nbeta\n`;
  const source = `export const tag = '${tag}';\n`;
  return [
    {
      type: 'tool_use',
      name: 'bash',
      input: { command: `mkdir -p ${dir} && cd ${dir} && export SESSION_TAG=${tag} && echo ready` },
      expect: { equals: 'ready' },
    },
    {
      type: 'tool_use',
      name: 'write',
      input: { file_path: `${dir}/notes.md`, content: notes },
      expect: { equals: `wrote ${Buffer.byteLength(notes)} bytes to ${dir}/notes.md` },
    },
    { type: 'tool_use', name: 'read', input: { file_path: `${dir}/notes.md` }, expect: { equals: notes } },
    {
      type: 'tool_use',
      name: 'edit',
      input: { file_path: `${dir}/notes.md`, old_string: 'alpha', new_string: `gamma-${tag}` },
      expect: { equals: `edited ${dir}/notes.md (1 replacement(s))` },
    },
    {
      type: 'tool_use',
      name: 'bash',
      input: { command: 'pwd; echo $SESSION_TAG; wc -l < notes.md' },
      expect: { equals: `${dir}\n${tag}\n3` },
    },
    {
      type: 'tool_use',
      name: 'write',
      input: { file_path: `${dir}/src/tag.ts`, content: source },
      expect: { contains: `wrote ${Buffer.byteLength(source)} bytes` },
    },
    {
      type: 'tool_use',
      name: 'glob',
      input: { pattern: '**/*.ts', path: dir },
      expect: { contains: `${dir}/src/tag.ts`, notContains: 'notes.md' },
    },
    {
      type: 'tool_use',
      name: 'grep',
      input: { pattern: `gamma-${tag}`, path: dir },
      expect: { contains: ['notes.md', `gamma-${tag}`] },
    },
    {
      type: 'tool_use',
      name: 'read',
      input: { file_path: `${dir}/notes.md` },
      expect: { equals: `session ${tag}\ngamma-${tag}\nbeta\n` },
    },
    {
      type: 'tool_use',
      name: 'bash',
      input: { command: 'cat src/tag.ts' },
      expect: { equals: source.trimEnd() },
    },
    {
      type: 'tool_use',
      name: 'bash',
      input: { command: 'ls -A | xargs' },
      expect: { equals: 'notes.md src' },
    },
  ];
}

export const sessionTranscript: Transcript = {
  name: SESSION_TRANSCRIPT,
  steps: ({ text, results }) => sessionSteps(text.replace(/^session /, ''))[results.length],
};

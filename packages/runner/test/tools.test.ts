import { mkdir, mkdtemp, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { BetaRunnableTool, BetaToolRunContext } from '@anthropic-ai/sdk/lib/tools/BetaRunnableTool';
import { ToolError } from '@anthropic-ai/sdk/lib/tools/ToolError';
import { betaAgentToolset20260401 } from '@anthropic-ai/sdk/tools/agent-toolset/node';
import { createStatebox, type Sandbox, type Statebox } from '@statebox/core';
import { local } from '@statebox/local';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { copyBashState, createToolset, type ToolsetOptions } from '../src/tools/index.js';

type Outcome = { ok: boolean; text: string };
type Tools = Record<string, BetaRunnableTool>;

/** Parses and runs like the SDK's `runRunnableTool`, keeping a `ToolError`'s text as the result. */
async function call(tools: Tools, name: string, input: unknown): Promise<Outcome> {
  const tool = tools[name]!;
  try {
    const result = await tool.run(tool.parse(input));
    return { ok: true, text: String(result) };
  } catch (error) {
    if (error instanceof ToolError) return { ok: false, text: String(error.content) };
    throw error;
  }
}

function byName(list: BetaRunnableTool[]): Tools {
  return Object.fromEntries(list.map((tool) => [tool.name, tool]));
}

const MAX_FILE_BYTES = 4096;
const WORKDIR = '/workspace';

let home: string;
let hostDir: string;
let statebox: Statebox;
let box: Sandbox;
let ours: Tools;
let reference: Tools;

function toolset(options: Partial<ToolsetOptions> = {}): Tools {
  return byName(
    createToolset({
      sandbox: async () => box,
      sessionId: 'differential',
      maxFileBytes: MAX_FILE_BYTES,
      ...options,
    }),
  );
}

/** The same tree in the sandbox's workdir and in the reference's host workdir, mtimes included. */
const tree: Record<string, string> = {
  'README.md': '# demo\nhello world\n',
  'notes.txt': 'one\ntwo\nthree\nfour\nfive\n',
  'no-newline.txt': 'alpha\nbeta',
  'empty.txt': '',
  'dup.txt': 'foo bar foo baz foo\n',
  'src/a.ts': 'export const a = 1;\n// TODO: a\n',
  'src/b.ts': 'export const b = 2;\n',
  'src/deep/c.ts': 'import { a } from "../a";\n// TODO: c\n',
  'src/.hidden.ts': 'hidden\n',
  'lib/x.txt': 'x\n',
  'node_modules/pkg/index.ts': 'TODO: vendored\n',
  '.git/config': 'TODO: git\n',
  'big.txt': `${'0123456789abcdef\n'.repeat(400)}`,
  'wide.txt': `short\n${'w'.repeat(5000)}\nend\n`,
  'unicode.txt': 'caf\u00e9 \u{1f600}\n\ufeffbom\n',
};

async function seed(): Promise<void> {
  const base = 1_700_000_000;
  let index = 0;
  for (const [path, content] of Object.entries(tree)) {
    const mtime = base + index++ * 60;
    const host = join(hostDir, path);
    await mkdir(dirname(host), { recursive: true });
    await writeFile(host, content);
    await utimes(host, mtime, mtime);
    await box.writeFile(`${WORKDIR}/${path}`, content);
    await box.exec(['touch', '-d', `@${mtime}`, `${WORKDIR}/${path}`]);
  }
  await mkdir(join(hostDir, 'sub'));
  await box.exec(['mkdir', '-p', `${WORKDIR}/sub`]);
  for (const [link, target] of [
    ['loop1', 'loop2'],
    ['loop2', 'loop1'],
    ['etc-link', '/etc'],
    ['dangling-out', '/etc/statebox-nope'],
    ['readme-link', 'README.md'],
  ] as const) {
    await symlink(target, join(hostDir, link));
    await box.exec(['ln', '-s', target, `${WORKDIR}/${link}`]);
  }
}

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'statebox-tools-'));
  hostDir = await mkdtemp(join(tmpdir(), 'statebox-reference-'));
  statebox = createStatebox({ provider: local({ home }) });
  box = await statebox.create({ env: { ANTHROPIC_BASE_URL: 'https://sandbox-env.invalid' } });
  await seed();
  ours = toolset();
  reference = byName(betaAgentToolset20260401({ workdir: hostDir, maxFileBytes: MAX_FILE_BYTES }));
});

afterAll(async () => {
  await Promise.all(Object.values(reference).map((tool) => tool.close?.()));
  await box?.destroy();
  await rm(home, { recursive: true, force: true });
  await rm(hostDir, { recursive: true, force: true });
});

/** Runs `input` through both toolsets and expects the same outcome, with the host workdir mapped. */
async function expectSame(name: string, input: unknown, normalise: (text: string) => string = (t) => t) {
  const theirs = await call(reference, name, JSON.parse(JSON.stringify(input).replaceAll(WORKDIR, hostDir)));
  const mine = await call(ours, name, input);
  const mapped = { ok: theirs.ok, text: normalise(theirs.text.replaceAll(hostDir, WORKDIR)) };
  expect({ ok: mine.ok, text: normalise(mine.text) }, `${name} ${JSON.stringify(input)}`).toEqual(mapped);
  return mine;
}

const sortedLines = (text: string) => text.split('\n').sort().join('\n');

describe('differential against the SDK reference toolset', () => {
  test('tool definitions match', () => {
    for (const name of ['bash', 'read', 'write', 'edit', 'glob', 'grep']) {
      const { description, input_schema, type } = reference[name] as unknown as Record<string, unknown>;
      const mine = ours[name] as unknown as Record<string, unknown>;
      expect({
        name,
        description: mine.description,
        input_schema: mine.input_schema,
        type: mine.type,
      }).toEqual({
        name,
        description,
        input_schema,
        type,
      });
    }
    expect(Object.keys(ours)).toEqual(['bash', 'read', 'write', 'edit', 'glob', 'grep']);
  });

  test('read', async () => {
    const cases: unknown[] = [
      { file_path: 'README.md' },
      { file_path: `${WORKDIR}/notes.txt` },
      { file_path: 'notes.txt', view_range: [2, 3] },
      { file_path: 'notes.txt', view_range: [2, 0] },
      { file_path: 'notes.txt', view_range: [4, -1] },
      { file_path: 'notes.txt', view_range: [5, 6] },
      { file_path: 'notes.txt', view_range: [9, 12] },
      { file_path: 'notes.txt', view_range: [0, 1] },
      { file_path: 'notes.txt', view_range: [3, 2] },
      { file_path: 'notes.txt', view_range: [] },
      { file_path: 'notes.txt', view_range: [1, 2, 3] },
      { file_path: 'no-newline.txt', view_range: [2, 2] },
      { file_path: 'no-newline.txt', view_range: [1, 0] },
      { file_path: 'empty.txt' },
      { file_path: 'unicode.txt' },
      { file_path: 'readme-link' },
      { file_path: 'src' },
      { file_path: 'missing.txt' },
      { file_path: '' },
      { file_path: '/etc/passwd' },
      { file_path: '../outside.txt' },
      { file_path: 'etc-link/passwd' },
      { file_path: 'loop1' },
      { file_path: 'big.txt' },
      { file_path: 'big.txt', view_range: [2, 4] },
      { file_path: 'big.txt', view_range: [399, 0] },
      { file_path: 'big.txt', view_range: [1, 0] },
      { file_path: 'wide.txt', view_range: [2, 2] },
      { file_path: 'wide.txt', view_range: [1, 3] },
      { file_path: 'wide.txt', view_range: [3, 3] },
    ];
    for (const input of cases) await expectSame('read', input);
  });

  test('write and edit', async () => {
    const cases: [string, unknown][] = [
      ['write', { file_path: 'out/new/file.txt', content: 'first\nfoo foo\n' }],
      ['read', { file_path: 'out/new/file.txt' }],
      ['write', { file_path: 'out/new/file.txt', content: 'caf\u00e9 foo $1 foo\n' }],
      ['write', { file_path: 'out/empty.txt', content: '' }],
      ['write', { file_path: 'src', content: 'x' }],
      ['write', { file_path: 'README.md/child', content: 'x' }],
      ['write', { file_path: '/tmp/escape.txt', content: 'x' }],
      ['write', { file_path: 'dangling-out', content: 'x' }],
      ['write', { file_path: '', content: 'x' }],
      ['edit', { file_path: 'out/new/file.txt', old_string: 'missing', new_string: 'x' }],
      ['edit', { file_path: 'out/new/file.txt', old_string: 'foo', new_string: 'x' }],
      ['edit', { file_path: 'out/new/file.txt', old_string: 'caf\u00e9', new_string: '$& $1 $`' }],
      ['edit', { file_path: 'out/new/file.txt', old_string: 'foo', new_string: '[$&]', replace_all: true }],
      ['read', { file_path: 'out/new/file.txt' }],
      ['edit', { file_path: 'out/new/file.txt', old_string: '', new_string: 'x' }],
      ['edit', { file_path: 'missing.txt', old_string: 'a', new_string: 'b' }],
      ['edit', { file_path: 'src', old_string: 'a', new_string: 'b' }],
      ['edit', { file_path: 'big.txt', old_string: 'a', new_string: 'b' }],
      ['edit', { file_path: '/etc/hostname', old_string: 'a', new_string: 'b' }],
    ];
    for (const [name, input] of cases) await expectSame(name, input);
  });

  test('glob', async () => {
    const cases: unknown[] = [
      { pattern: '**/*.ts' },
      { pattern: '*.txt' },
      { pattern: 'src/**' },
      { pattern: './src/*.ts' },
      { pattern: '{src,lib}/*' },
      { pattern: '**/c.ts' },
      { pattern: '*.ts', path: 'src' },
      { pattern: '**/*', path: `${WORKDIR}/src/deep` },
      { pattern: '*.nothing' },
      { pattern: '/etc/*' },
      { pattern: '../*' },
      { pattern: 'src/{..,x}/*' },
      { pattern: '' },
      { pattern: '*', path: '/etc' },
      { pattern: '*', path: 'missing-dir' },
      { pattern: '*', path: 'README.md' },
      { pattern: '[ab].ts', path: 'src' },
      { pattern: 'src/*.{ts,js}' },
      { pattern: 'node_modules/**/*.ts' },
      { pattern: 'node_modules/pkg/*.ts' },
      { pattern: '.git/*' },
      { pattern: '*/*', path: 'node_modules' },
    ];
    for (const input of cases) await expectSame('glob', input);
  });

  test('grep (rg is absent on both sides: the reference walks in JavaScript, this runs grep -P)', async () => {
    const cases: unknown[] = [
      { pattern: 'TODO' },
      { pattern: 'export const [ab]' },
      { pattern: '\\d;$' },
      { pattern: 'foo', path: 'dup.txt' },
      { pattern: 'TODO', path: 'src' },
      { pattern: 'nothing-matches-this' },
      { pattern: '(' },
      { pattern: '' },
      { pattern: 'x', path: '/etc' },
      { pattern: 'x', path: 'missing-dir' },
      { pattern: '-foo' },
      { pattern: 'caf\u00e9|^beta$' },
      { pattern: '\\bfoo\\b', path: 'dup.txt' },
    ];
    for (const input of cases) await expectSame('grep', input, sortedLines);
  });

  test('bash', async () => {
    const cases: unknown[] = [
      { command: 'echo hi' },
      { command: "printf 'a\\n\\n\\n'" },
      { command: 'true' },
      { command: 'false' },
      { command: 'echo out; echo err >&2; exit_code() { return 2; }; exit_code' },
      { command: "printf '\\033[1mbold\\033[0m plain\\n'" },
      { command: 'read line; echo "[$line]"' },
      { command: 'cd sub && pwd' },
      { command: 'pwd' },
      { command: 'export STATEBOX_X=1; Y=2' },
      { command: 'echo "$STATEBOX_X $Y"' },
      { command: 'exit 3' },
      { command: 'echo "[$STATEBOX_X]"; pwd' },
      { command: 'for i in 1 2 3; do echo $i; done | tac' },
      { command: 'echo before; no_such_command_statebox' },
      {},
      { restart: true },
      { restart: true, command: 'echo "[$STATEBOX_X]"' },
      { command: 'sleep 5', timeout_ms: 300 },
    ];
    for (const input of cases) {
      // The reference's shell numbers lines from its start, across calls; ours from the command's start.
      await expectSame('bash', input, (text) =>
        text.replace(/^\/bin\/bash: (eval: )?line \d+: /gm, '/bin/bash: '),
      );
    }
  });

  test('bash keeps the tail of long output', async () => {
    const input = { command: "head -c 200000 /dev/zero | tr '\\0' a; printf '\\nend\\n'" };
    const theirs = await call(reference, 'bash', input);
    const mine = await call(ours, 'bash', input);
    for (const outcome of [theirs, mine]) {
      expect(outcome.ok).toBe(true);
      expect(outcome.text.startsWith('[output truncated]\naaaa')).toBe(true);
      expect(outcome.text.endsWith('aaaa\nend')).toBe(true);
    }
    // The reference keeps 102 400 characters including its sentinel line; this keeps 102 400 bytes.
    expect(mine.text.length).toBe('[output truncated]\n'.length + 102_400 - 1);
  });
});

describe('bash session state', () => {
  test('cwd, exported and plain variables, functions and options persist across calls', async () => {
    const tools = toolset({ sessionId: 'state' });
    expect(
      await call(tools, 'bash', { command: 'mkdir -p sub/dir && cd sub && export FOO=1 && BAR=two' }),
    ).toEqual({
      ok: true,
      text: '',
    });
    await call(tools, 'bash', {
      command: 'greet() { echo "hi $1"; }; set -o pipefail; arr=(x "y z"); umask 027',
    });
    expect(
      await call(tools, 'bash', {
        command: 'pwd; echo $FOO $BAR; greet you; declare -p arr; umask',
      }),
    ).toEqual({
      ok: true,
      text: `${WORKDIR}/sub\n1 two\nhi you\ndeclare -a arr=([0]="x" [1]="y z")\n0027`,
    });
    expect(await call(tools, 'bash', { command: 'false | true' })).toEqual({ ok: false, text: 'exit 1' });
    expect(await call(tools, 'bash', { command: 'cd dir; cd -; unset FOO; env | grep -c ^FOO=' })).toEqual({
      ok: false,
      text: `${WORKDIR}/sub\n0`,
    });
    expect(await call(tools, 'bash', { command: 'echo "[$FOO]"' })).toEqual({ ok: true, text: '[]' });
  });

  test('state survives suspend and resume', async () => {
    const tools = toolset({ sessionId: 'suspend' });
    await call(tools, 'bash', { command: 'cd sub && export KEPT=across-suspend' });
    await box.suspend();
    await box.resume();
    expect(await call(tools, 'bash', { command: 'pwd; echo $KEPT' })).toEqual({
      ok: true,
      text: `${WORKDIR}/sub\nacross-suspend`,
    });
  });

  test('state is seen by a second toolset in a new client, as by a new runner process', async () => {
    await call(toolset({ sessionId: 'handover' }), 'bash', { command: 'cd /tmp && export HANDED=over' });
    const again = await createStatebox({ provider: local({ home }) }).get(box.id);
    const second = byName(createToolset({ sandbox: async () => again, sessionId: 'handover' }));
    expect(await call(second, 'bash', { command: 'pwd; echo $HANDED' })).toEqual({
      ok: true,
      text: '/tmp\nover',
    });
    const other = byName(createToolset({ sandbox: async () => again, sessionId: 'another' }));
    expect(await call(other, 'bash', { command: 'pwd; echo "[$HANDED]"' })).toEqual({
      ok: true,
      text: `${WORKDIR}\n[]`,
    });
  });

  test('restart forgets the state', async () => {
    const tools = toolset({ sessionId: 'restart' });
    await call(tools, 'bash', { command: 'cd sub; export GONE=1' });
    expect(await call(tools, 'bash', { restart: true })).toEqual({
      ok: true,
      text: 'bash session restarted',
    });
    expect(await call(tools, 'bash', { command: 'pwd; echo "[$GONE]"' })).toEqual({
      ok: true,
      text: `${WORKDIR}\n[]`,
    });
  });

  test('concurrent calls of one session run one after another', async () => {
    const tools = toolset({ sessionId: 'concurrent' });
    await call(tools, 'bash', { command: 'export N=0' });
    const twin = toolset({ sessionId: 'concurrent' });
    await Promise.all(
      Array.from({ length: 8 }, (_, index) =>
        call(index % 2 ? tools : twin, 'bash', { command: 'export N=$((N + 1))' }),
      ),
    );
    expect(await call(tools, 'bash', { command: 'echo $N' })).toEqual({ ok: true, text: '8' });
  });

  test('a forked session starts from the parent session state', async () => {
    await call(toolset({ sessionId: 'parent' }), 'bash', { command: 'cd sub && export FROM=parent' });
    const child = await box.fork();
    try {
      await copyBashState(child, 'parent', 'child');
      const tools = byName(createToolset({ sandbox: child, sessionId: 'child' }));
      expect(await call(tools, 'bash', { command: 'pwd; echo $FROM' })).toEqual({
        ok: true,
        text: `${WORKDIR}/sub\nparent`,
      });
    } finally {
      await child.destroy();
    }
  });

  test('a command longer than one argv argument goes through stdin', async () => {
    const tools = toolset({ sessionId: 'long' });
    const payload = 'x'.repeat(150_000);
    const result = await call(tools, 'bash', { command: `V=${payload}; echo \${#V}` });
    expect(result).toEqual({ ok: true, text: '150000' });
    // 40 000 quotes are 40 KB of command and 160 KB quoted for the script.
    const quotes = "'".repeat(40_000);
    expect(await call(tools, 'bash', { command: `Q="${quotes}"; echo \${#Q}` })).toEqual({
      ok: true,
      text: '40000',
    });
    expect(await call(tools, 'bash', { command: 'echo a\0b' })).toEqual({ ok: true, text: 'ab' });
  });
});

describe('bash processes and environment', () => {
  test('a background process does not hold the call open and keeps running', async () => {
    const tools = toolset({ sessionId: 'background' });
    // With the exec's pipe held, these calls would run into their timeout instead of returning.
    expect(
      await call(tools, 'bash', {
        command:
          'sleep 1001 & p=$!; ( while sleep 1; do :; done ) & p="$p $!"; python3 -m http.server 8765 >/dev/null 2>&1 & p="$p $!"; echo started',
        timeout_ms: 30_000,
      }),
    ).toEqual({ ok: true, text: 'started' });
    const listing = await call(tools, 'bash', { command: 'ps -eo args', timeout_ms: 30_000 });
    expect(listing.text).toContain('sleep 1001');
    expect(listing.text).toContain('http.server 8765');
    expect(await call(tools, 'bash', { command: 'kill $p' })).toEqual({ ok: true, text: '' });
  });

  test('a timeout kills the whole process tree', async () => {
    const tools = toolset({ sessionId: 'timeout' });
    expect(
      await call(tools, 'bash', { command: '(sleep 1234 &); sleep 1235 & sleep 1236', timeout_ms: 1000 }),
    ).toEqual({
      ok: false,
      text: 'bash: bash command timed out after 1000ms',
    });
    const listing = await call(tools, 'bash', { command: 'ps -eo args' });
    expect(listing.text).not.toMatch(/sleep 123[456]/);
  });

  test('an abort of the call kills the command, with the reference text', async () => {
    const tools = toolset({ sessionId: 'abort' });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 300);
    const context = { signal: controller.signal } as BetaToolRunContext;
    await expect(tools.bash!.run({ command: 'sleep 1237' }, context)).rejects.toThrow(
      'bash: This operation was aborted',
    );
    const listing = await call(tools, 'bash', { command: 'ps -eo args' });
    expect(listing.text).not.toContain('sleep 1237');
  });

  test('the default timeout applies when timeout_ms is absent', async () => {
    const tools = toolset({ sessionId: 'default-timeout', defaultTimeoutMs: 500 });
    expect(await call(tools, 'bash', { command: 'sleep 30' })).toEqual({
      ok: false,
      text: 'bash: bash command timed out after 500ms',
    });
  });

  test('no ANTHROPIC_* variable reaches the sandbox', async () => {
    const tools = toolset({
      sessionId: 'env',
      env: {
        ANTHROPIC_API_KEY: 'sk-secret',
        anthropic_auth_token: 'secret',
        Anthropic_Session: 's',
        KEEP_ME: 'kept',
      },
    });
    const result = await call(tools, 'bash', { command: 'env; echo; set' });
    expect(result.ok).toBe(true);
    expect(result.text).toContain('KEEP_ME=kept');
    expect(result.text).not.toMatch(/anthropic_/i);
    expect(result.text).toContain('TERM=dumb');
    // A variable the agent exports itself is its own business, and persists like any other.
    await call(tools, 'bash', { command: 'export ANTHROPIC_MINE=1' });
    expect(await call(tools, 'bash', { command: 'echo $ANTHROPIC_MINE' })).toEqual({ ok: true, text: '1' });
  });

  test('a syntax error is reported, and the session lives on (the reference loses its shell)', async () => {
    const tools = toolset({ sessionId: 'syntax' });
    await call(tools, 'bash', { command: 'cd sub' });
    const result = await call(tools, 'bash', { command: 'if then' });
    expect(result.ok).toBe(false);
    expect(result.text).toMatch(/^\/bin\/bash: eval: line \d+: syntax error near unexpected token `then'\n/);
    expect(await call(tools, 'bash', { command: 'pwd' })).toEqual({ ok: true, text: `${WORKDIR}/sub` });
  });

  test('invalid input is a ToolError naming the field', async () => {
    expect(await call(ours, 'bash', { command: 5 })).toEqual({
      ok: false,
      text: 'bash: command must be a string',
    });
    expect(await call(ours, 'read', { file_path: 'a', view_range: ['1', 2] })).toEqual({
      ok: false,
      text: 'read: view_range must be an array of integers',
    });
    expect(await call(ours, 'read', 'README.md')).toEqual({
      ok: false,
      text: 'read: input must be an object',
    });
  });
});

describe('file tools in the sandbox', () => {
  test('new files are 0600, new directories 0700, an existing mode is kept', async () => {
    await call(ours, 'write', { file_path: 'modes/a/b.txt', content: 'x' });
    await box.exec([
      'sh',
      '-c',
      `printf 'a\\n' > ${WORKDIR}/modes/run.sh && chmod 755 ${WORKDIR}/modes/run.sh`,
    ]);
    expect(await call(ours, 'edit', { file_path: 'modes/run.sh', old_string: 'a', new_string: 'b' })).toEqual(
      {
        ok: true,
        text: 'edited modes/run.sh (1 replacement(s))',
      },
    );
    const modes = await box.exec([
      'stat',
      '-c',
      '%a %n',
      'modes',
      'modes/a',
      'modes/a/b.txt',
      'modes/run.sh',
    ]);
    expect(modes.stdout).toBe('700 modes\n700 modes/a\n600 modes/a/b.txt\n755 modes/run.sh\n');
    const leftovers = await box.exec([
      'sh',
      '-c',
      `ls -A ${WORKDIR}/modes ${WORKDIR}/modes/a | grep -c tmp; true`,
    ]);
    expect(leftovers.stdout.trim()).toBe('0');
  });

  test('allowed roots open a directory, read-only roots refuse write and edit', async () => {
    await box.exec([
      'sh',
      '-c',
      'mkdir -p /tmp/store /tmp/ro && echo kept > /tmp/ro/file && echo s > /tmp/store/s',
    ]);
    const tools = toolset({ allowedRoots: ['/tmp/store', '/tmp/ro'], readOnlyRoots: ['/tmp/ro'] });
    expect(await call(tools, 'read', { file_path: '/tmp/ro/file' })).toEqual({ ok: true, text: 'kept\n' });
    expect(await call(tools, 'write', { file_path: '/tmp/store/n.txt', content: 'n' })).toEqual({
      ok: true,
      text: 'wrote 1 bytes to /tmp/store/n.txt',
    });
    expect(await call(tools, 'write', { file_path: '/tmp/ro/file', content: 'x' })).toEqual({
      ok: false,
      text: 'write: /tmp/ro/file is inside read-only directory /tmp/ro',
    });
    expect(
      await call(tools, 'edit', { file_path: '/tmp/ro/file', old_string: 'kept', new_string: 'x' }),
    ).toEqual({
      ok: false,
      text: 'edit: /tmp/ro/file is inside read-only directory /tmp/ro',
    });
    expect(await call(tools, 'read', { file_path: '/tmp/elsewhere' })).toEqual({
      ok: false,
      text: `path "/tmp/elsewhere" is outside the session's working directory and its other permitted directories`,
    });
    expect(await call(tools, 'glob', { pattern: '*', path: '/tmp/store' })).toEqual({
      ok: true,
      text: expect.stringMatching(/^\/tmp\/store\/(n\.txt|s)\n\/tmp\/store\/(n\.txt|s)$/),
    });
    expect(await call(tools, 'grep', { pattern: 'kept', path: '/tmp/ro' })).toEqual({
      ok: true,
      text: '/tmp/ro/file:1:kept',
    });
  });

  test('glob returns at most 200 paths, newest first', async () => {
    await box.exec([
      'bash',
      '-c',
      `mkdir -p ${WORKDIR}/many && cd ${WORKDIR}/many && for i in $(seq 1 250); do touch -d @$((1700000000 + i)) f$i.log; done`,
    ]);
    const result = await call(ours, 'glob', { pattern: 'many/*.log' });
    const lines = result.text.split('\n');
    expect(lines).toHaveLength(200);
    expect(lines[0]).toBe(`${WORKDIR}/many/f250.log`);
    expect(lines[199]).toBe(`${WORKDIR}/many/f51.log`);
  });

  test('grep caps its output with the reference note', async () => {
    await box.exec([
      'bash',
      '-c',
      `mkdir -p /tmp/g && for i in $(seq 1 3000); do echo "match line $i padded to be long enough"; done > /tmp/g/f`,
    ]);
    const tools = toolset({ allowedRoots: ['/tmp/g'] });
    const result = await call(tools, 'grep', { pattern: 'match', path: '/tmp/g' });
    expect(result.ok).toBe(true);
    expect(result.text.endsWith('\n[output truncated at 102400 bytes]')).toBe(true);
    expect(Buffer.byteLength(result.text)).toBeLessThanOrEqual(102_400 + 40);
    expect(result.text.split('\n')[0]).toBe('/tmp/g/f:1:match line 1 padded to be long enough');
  });
});

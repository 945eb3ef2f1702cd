/**
 * What the scripted agent does in the offline demo. Each tool result is checked against `expect`, so
 * the demo fails loudly if state did not survive the suspend or if branches leak into each other.
 */

const fixtureFiles: Record<string, string> = {
  'package.json': '{\n  "name": "inventory",\n  "version": "1.0.0",\n  "type": "module"\n}\n',
  'src/store.js':
    'export const items = [];\n\nexport function add(name, price, quantity) {\n  items.push({ name, price, quantity });\n}\n\nexport function calc(list = items) {\n  return list.reduce((sum, item) => sum + item.price * item.quantity, 0);\n}\n',
  'src/report.js':
    "import { calc, items } from './store.js';\n\nfunction money(value) {\n  return '$' + value.toFixed(2);\n}\n\nexport function report() {\n  return items.map((item) => item.name + ' ' + money(item.price)).concat('total ' + money(calc())).join('\\n');\n}\n",
  'README.md': '# inventory\n\nA small inventory module.\n',
};

/** A shell script that builds the fixture "remote" inside the sandbox (no network here). */
function fixtureOrigin(): string {
  const writes = Object.entries(fixtureFiles)
    .map(
      ([path, content]) =>
        `mkdir -p "$(dirname '${path}')" && printf '%s' '${content.replace(/'/g, `'\\''`)}' > '${path}'`,
    )
    .join('\n');
  return `set -e
rm -rf /tmp/origin && mkdir -p /tmp/origin/inventory && cd /tmp/origin/inventory
git init -q -b main .
${writes}
git add -A && git -c user.name=upstream -c user.email=upstream@example.com commit -qm 'Initial import'
cd /workspace && git clone -q /tmp/origin/inventory inventory && ls inventory inventory/src`;
}

const tally = `mkdir -p /root/.local/bin && cat > /root/.local/bin/tally <<'EOF'
#!/bin/sh
# tally: lines of code per file extension
find "\${1:-.}" -type f -name '*.*' ! -path '*/.git/*' | while read -r f; do echo "\${f##*.} $(wc -l < "$f")"; done |
  awk '{ n[$1] += $2 } END { for (e in n) printf "%s %d\\n", e, n[e] }' | sort
EOF
chmod +x /root/.local/bin/tally && export PATH="/root/.local/bin:$PATH" && tally /workspace/inventory`;

export type DemoStep =
  | { type: 'thinking' }
  | { type: 'message'; text: string }
  | {
      type: 'tool_use';
      name: string;
      input: Record<string, unknown>;
      expect?: { isError?: boolean; contains?: string | string[]; equals?: string; notContains?: string };
    };

export type DemoTranscript = { name: string; match: string; steps: DemoStep[] };

export const eveningPrompt =
  'Clone the inventory repository, read its structure, write your analysis to /workspace/analysis.md, keep notes, and install a line-counting tool.';
export const morningPrompt =
  'Good morning. Pick up where you left off: check your notes and the tool are still there.';
export const strategies = ['rename', 'extract', 'types'] as const;
export const forkPrompt = (strategy: string) => `Refactor the inventory module. Strategy: ${strategy}.`;

export const demoTranscripts: DemoTranscript[] = [
  {
    name: 'evening',
    match: '^Clone the inventory repository',
    steps: [
      { type: 'thinking' },
      { type: 'message', text: "I'll clone the repository and look around." },
      {
        type: 'tool_use',
        name: 'bash',
        input: { command: fixtureOrigin() },
        expect: { contains: ['src', 'store.js'] },
      },
      {
        type: 'tool_use',
        name: 'glob',
        input: { pattern: '**/*.js', path: '/workspace/inventory' },
        expect: { contains: 'store.js' },
      },
      {
        type: 'tool_use',
        name: 'read',
        input: { file_path: '/workspace/inventory/src/store.js' },
        expect: { contains: 'export function calc' },
      },
      {
        type: 'tool_use',
        name: 'grep',
        input: { pattern: 'calc\\(', path: '/workspace/inventory' },
        expect: { contains: 'report.js:' },
      },
      {
        type: 'tool_use',
        name: 'write',
        input: {
          file_path: '/workspace/analysis.md',
          content:
            '# Analysis of inventory\n\n- `calc()` is vaguely named: rename it.\n- `report.js` mixes formatting with reporting: extract the helpers.\n- No types: add JSDoc.\n',
        },
        expect: { contains: 'wrote' },
      },
      {
        type: 'tool_use',
        name: 'write',
        input: { file_path: '/workspace/notes.md', content: '# Notes\n\nstatus: TODO\n' },
        expect: { contains: 'wrote' },
      },
      {
        type: 'tool_use',
        name: 'edit',
        input: {
          file_path: '/workspace/notes.md',
          old_string: 'status: TODO',
          new_string: 'status: analysed, three strategies to try',
        },
        expect: { contains: 'edited' },
      },
      { type: 'tool_use', name: 'bash', input: { command: tally }, expect: { contains: 'js' } },
      {
        type: 'tool_use',
        name: 'bash',
        input: {
          command: 'cd /workspace/inventory && export REVIEW_TICKET=INV-42 && git log --oneline | wc -l',
        },
        expect: { equals: '1' },
      },
      {
        type: 'message',
        text: 'Analysis is in /workspace/analysis.md; notes in /workspace/notes.md. Stopping for tonight.',
      },
    ],
  },
  {
    name: 'morning',
    match: '^Good morning',
    steps: [
      { type: 'thinking' },
      {
        type: 'tool_use',
        name: 'bash',
        input: { command: 'pwd; echo "$REVIEW_TICKET"' },
        expect: { equals: '/workspace/inventory\nINV-42' },
      },
      {
        type: 'tool_use',
        name: 'read',
        input: { file_path: '/workspace/notes.md' },
        expect: { contains: 'three strategies' },
      },
      {
        type: 'tool_use',
        name: 'read',
        input: { file_path: '/workspace/analysis.md', view_range: [1, 1] },
        expect: { equals: '# Analysis of inventory' },
      },
      {
        type: 'tool_use',
        name: 'bash',
        input: { command: 'tally . && git status --short | wc -l' },
        expect: { contains: ['js', '\n0'] },
      },
      {
        type: 'message',
        text: 'Everything is where I left it, including the shell: same directory, same variables.',
      },
    ],
  },
  ...strategies.map(
    (strategy): DemoTranscript => ({
      name: `fork-${strategy}`,
      match: `Strategy: ${strategy}\\.`,
      steps: [
        { type: 'thinking' },
        {
          type: 'tool_use',
          name: 'bash',
          input: { command: 'pwd; echo "$REVIEW_TICKET"' },
          expect: { equals: '/workspace/inventory\nINV-42' },
        },
        ...refactoring(strategy),
        {
          type: 'tool_use',
          name: 'bash',
          input: {
            command: `git checkout -qb ${strategy} && git add -A && git -c user.name=agent -c user.email=agent@example.com commit -qm "Refactor: ${strategy}" && git branch --format='%(refname:short)' | sort | xargs`,
          },
          expect: { equals: `main ${strategy}`.split(' ').sort().join(' ') },
        },
        {
          type: 'tool_use',
          name: 'bash',
          input: { command: 'git log --oneline | wc -l; ls /workspace' },
          expect: { contains: ['2', 'analysis.md'] },
        },
        { type: 'message', text: `Strategy '${strategy}' committed on its own branch.` },
      ],
    }),
  ),
];

function refactoring(strategy: (typeof strategies)[number]): DemoStep[] {
  switch (strategy) {
    case 'rename':
      return [
        {
          type: 'tool_use',
          name: 'edit',
          input: {
            file_path: '/workspace/inventory/src/store.js',
            old_string: 'export function calc(',
            new_string: 'export function computeTotal(',
          },
          expect: { contains: '(1 replacement' },
        },
        {
          type: 'tool_use',
          name: 'edit',
          input: {
            file_path: '/workspace/inventory/src/report.js',
            old_string: 'calc',
            new_string: 'computeTotal',
            replace_all: true,
          },
          expect: { contains: '(2 replacement' },
        },
      ];
    case 'extract':
      return [
        {
          type: 'tool_use',
          name: 'write',
          input: {
            file_path: '/workspace/inventory/src/format.js',
            content: "export function money(value) {\n  return '$' + value.toFixed(2);\n}\n",
          },
          expect: { contains: 'wrote' },
        },
        {
          type: 'tool_use',
          name: 'edit',
          input: {
            file_path: '/workspace/inventory/src/report.js',
            old_string: "function money(value) {\n  return '$' + value.toFixed(2);\n}\n",
            new_string: "import { money } from './format.js';\n",
          },
          expect: { contains: 'edited' },
        },
      ];
    case 'types':
      return [
        {
          type: 'tool_use',
          name: 'edit',
          input: {
            file_path: '/workspace/inventory/src/store.js',
            old_string: 'export function add(',
            new_string:
              '/** @param {string} name @param {number} price @param {number} quantity */\nexport function add(',
          },
          expect: { contains: 'edited' },
        },
      ];
  }
}

import type { Box } from './types.ts';

/**
 * The seed scenario's content (examples/seed/demo.mjs, as data both halves of the benchmark share):
 * a small project under git, notes, a tool installed under $HOME/.local, shell state in the library's
 * persistent shell, and a background process that writes a heartbeat.
 */

export const project: Record<string, string> = {
  'inventory/package.json': `${JSON.stringify({ name: 'inventory', version: '1.0.0', type: 'module' }, null, 2)}\n`,
  'inventory/src/store.js':
    'export const items = [];\n\nexport function add(name, price, quantity) {\n  items.push({ name, price, quantity });\n}\n\nexport function calc(list = items) {\n  return list.reduce((sum, item) => sum + item.price * item.quantity, 0);\n}\n',
  'inventory/src/report.js':
    "import { calc, items } from './store.js';\n\nfunction money(value) {\n  return '$' + value.toFixed(2);\n}\n\nexport function report() {\n  return items.map((item) => item.name + ' ' + money(item.price * item.quantity)).join('\\n') + '\\ntotal ' + money(calc());\n}\n",
  'inventory/test.js':
    "import { add, calc } from './src/store.js';\nadd('apple', 0.5, 4);\nadd('pear', 0.75, 2);\nif (calc() !== 3.5) throw new Error('total is wrong');\nconsole.log('ok');\n",
  'inventory/README.md': '# inventory\n\nA tiny inventory module the agent studies overnight.\n',
};

/** The installed tool: `tally`, lines per file extension, installed by its own install script. */
export const tool: Record<string, { content: string; mode: number }> = {
  '.bench/tally-1.0/bin/tally': {
    mode: 0o755,
    content: `#!/bin/sh\nfind "\${1:-.}" -type f -name '*.*' ! -path '*/.git/*' | while read -r f; do echo "\${f##*.} $(wc -l < "$f")"; done |\n  awk '{ n[$1] += $2 } END { for (e in n) printf "%-6s %5d\\n", e, n[e] }' | sort\n`,
  },
  '.bench/tally-1.0/install.sh': {
    mode: 0o755,
    content:
      '#!/bin/sh\nset -e\nprefix="$HOME/.local"\nmkdir -p "$prefix/opt" "$prefix/bin"\ncp -a "$(dirname "$0")" "$prefix/opt/"\nln -sf "$prefix/opt/tally-1.0/bin/tally" "$prefix/bin/tally"\ngrep -q .local/bin "$HOME/.profile" 2>/dev/null || echo \'export PATH="$HOME/.local/bin:$PATH"\' >> "$HOME/.profile"\n',
  },
};

export const GIT = 'git -c user.name=agent -c user.email=agent@example.com';

export const strategies: Record<string, string> = {
  rename: "sed -i 's/\\bcalc\\b/computeTotal/g' src/store.js src/report.js test.js",
  extract:
    "printf 'export function money(value) {\\n  return \"$\" + value.toFixed(2);\\n}\\n' > src/format.js && sed -i '/^function money/,/^}/d' src/report.js && sed -i \"1a import { money } from './format.js';\" src/report.js",
  types: "sed -i 's#^export function calc#/** @returns {number} */\\nexport function calc#' src/store.js",
};

/** The shell state the evening leaves in the persistent shell, and how the morning reads it back. */
export const shellSetup = 'cd inventory && export TICKET=SB-1042 && greet() { echo "hello $1"; }';
export const shellProbe = 'echo "$TICKET|$(basename "$PWD")|$(greet agent)"';
export const shellExpected = 'SB-1042|inventory|hello agent';

/** A background process: a heartbeat every 200 ms, detached from the exec that starts it. */
export const heartbeatStart =
  "nohup sh -c 'n=0; while :; do n=$((n+1)); echo $n > .bench/heartbeat; sleep 0.2; done' >/dev/null 2>&1 & echo $!";

/**
 * Every file, mode and symlink of the work in the workspace (project, notes, the tool's output), with
 * content hashes. The installed tool lives outside the workspace and is checked by running it.
 */
export function manifestCommand(): string {
  return (
    'find inventory notes.md tally.txt \\( -type l -printf "%p -> %l\\n" \\) -o ' +
    '\\( -type d -printf "%p/ %m\\n" \\) -o \\( -type f -printf "%p %m " -exec sha256sum {} \\; \\) | ' +
    'sed "s/  .*$//" | LC_ALL=C sort'
  );
}

/** Whether the heartbeat still advances: read it, wait a second, read again. */
export async function heartbeatAlive(box: Box): Promise<boolean> {
  const read = async () => (await box.exec('cat .bench/heartbeat 2>/dev/null || echo none')).stdout.trim();
  const first = await read();
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const second = await read();
  return first !== 'none' && first !== second;
}

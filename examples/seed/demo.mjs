#!/usr/bin/env node
// The seed scenario, end to end on whichever provider is configured (local by default):
//   evening: create a sandbox, do real work in /workspace (a git repo, notes, an installed tool), suspend;
//   next morning, in a NEW process: resume, verify every file, mode and symlink, then fork three
//   branches that each try a different refactoring and show that they diverge.
//
//   node demo.mjs            run both halves (the morning half in a child process)
//   node demo.mjs --keep     leave the sandboxes behind (their ids are printed)
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createStatebox } from '@statebox/core';

const args = process.argv.slice(2);
const keep = args.includes('--keep');
const statebox = createStatebox();
const color = process.stdout.isTTY && !process.env.NO_COLOR;
const dim = (text) => (color ? `\x1b[2m${text}\x1b[0m` : text);
const bold = (text) => (color ? `\x1b[1m${text}\x1b[0m` : text);
const green = (text) => (color ? `\x1b[32m${text}\x1b[0m` : text);

async function step(label, action) {
  const started = performance.now();
  const result = await action();
  const ms = performance.now() - started;
  console.log(`  ${green('✓')} ${label.padEnd(58)} ${dim(`${ms.toFixed(1).padStart(8)} ms`)}`);
  return result;
}

/** Runs a shell command in the sandbox and fails loudly on a non-zero exit. */
async function sh(box, command, options = {}) {
  const result = await box.exec(command, options);
  if (result.exitCode !== 0) {
    throw new Error(
      `\`${command}\` exited ${result.exitCode} in ${box.id}:\n${result.stderr || result.stdout}`,
    );
  }
  return result.stdout;
}

/** Every file, directory, mode and symlink under the sandbox's persistent dirs, with content hashes. */
async function manifest(box) {
  return sh(
    box,
    'cd / && find workspace root -mindepth 1 \\( -type l -printf "%p -> %l\\n" \\) -o \\( -type d -printf "%p/ %m\\n" \\) ' +
      '-o \\( -type f -printf "%p %m " -exec sha256sum {} \\; \\) | sed "s/  .*$//" | LC_ALL=C sort',
  );
}

const project = {
  'package.json': JSON.stringify(
    { name: 'inventory', version: '1.0.0', type: 'module', scripts: { test: 'node test.js' } },
    null,
    2,
  ),
  'src/store.js': `export const items = [];\n\nexport function add(name, price, quantity) {\n  items.push({ name, price, quantity });\n}\n\nexport function calc(list = items) {\n  return list.reduce((sum, item) => sum + item.price * item.quantity, 0);\n}\n`,
  'src/report.js': `import { calc, items } from './store.js';\n\nfunction money(value) {\n  return '$' + value.toFixed(2);\n}\n\nfunction pad(text, width) {\n  return String(text).padEnd(width);\n}\n\nexport function report() {\n  const lines = items.map((item) => pad(item.name, 12) + money(item.price * item.quantity));\n  lines.push(pad('total', 12) + money(calc()));\n  return lines.join('\\n');\n}\n`,
  'test.js': `import { add, calc } from './src/store.js';\nadd('apple', 0.5, 4);\nadd('pear', 0.75, 2);\nif (calc() !== 3.5) throw new Error('total is wrong');\nconsole.log('ok');\n`,
  'README.md': '# inventory\n\nA tiny inventory module the agent studies overnight.\n',
};

const tallyTool = {
  'tally-1.0/bin/tally': `#!/bin/sh\n# tally: lines of code per file extension under a directory.\nfind "\${1:-.}" -type f -name '*.*' ! -path '*/.git/*' | while read -r f; do echo "\${f##*.} $(wc -l < "$f")"; done |\n  awk '{ n[$1] += $2 } END { for (e in n) printf "%-6s %5d\\n", e, n[e] }' | sort\n`,
  'tally-1.0/install.sh': `#!/bin/sh\nset -e\nprefix="\${1:-/root/.local}"\nmkdir -p "$prefix/opt" "$prefix/bin"\ncp -a "$(dirname "$0")" "$prefix/opt/"\nln -sf "$prefix/opt/tally-1.0/bin/tally" "$prefix/bin/tally"\ngrep -q .local/bin /root/.profile 2>/dev/null || echo 'export PATH="$HOME/.local/bin:$PATH"' >> /root/.profile\n`,
};

async function evening() {
  console.log(bold('\nEvening: a first work session'));
  const box = await step('create a sandbox', () => statebox.create({ labels: { demo: 'seed' } }));
  console.log(dim(`    sandbox ${box.id} on provider '${box.provider.name}'`));
  await step('write a project into /workspace/inventory', async () => {
    for (const [path, content] of Object.entries(project)) await box.writeFile(`inventory/${path}`, content);
  });
  await step('git init, commit', () =>
    sh(
      box,
      'git init -q -b main && git add -A && git -c user.name=agent -c user.email=agent@example.com commit -qm "Initial import"',
      { cwd: 'inventory' },
    ),
  );
  await step('read the structure, write notes.md', async () => {
    const files = await sh(box, 'git ls-files && wc -l src/*.js', { cwd: 'inventory' });
    await box.writeFile(
      'notes.md',
      `# Notes (evening)\n\nFiles:\n\n\`\`\`\n${files}\`\`\`\n\n- calc() is a vague name: rename it.\n- report.js mixes formatting helpers with the report: extract them.\n- No type information anywhere: add JSDoc types.\n`,
    );
  });
  await step('install a tool (tally) into /root/.local', async () => {
    for (const [path, content] of Object.entries(tallyTool)) {
      await box.writeFile(`/tmp/${path}`, content, {
        mode: path.endsWith('.sh') || path.includes('/bin/') ? 0o755 : 0o644,
      });
    }
    await sh(
      box,
      'sh /tmp/tally-1.0/install.sh /root/.local && . /root/.profile && tally inventory > /workspace/tally.txt',
    );
  });
  await step('run the project tests', () =>
    sh(box, 'command -v node >/dev/null && node test.js || echo "(no node in sandbox: skipped)"', {
      cwd: 'inventory',
    }),
  );
  const before = await step('record a manifest of every file, mode and link', () => manifest(box));
  const info = await step('suspend (processes end, compute released, files kept)', () => box.suspend());
  console.log(dim(`    status: ${info.status}; ${before.trim().split('\n').length} entries recorded`));
  return { id: box.id, manifest: before };
}

async function morning(id, manifestFile) {
  console.log(bold('\nNext morning: a new process picks the sandbox up'));
  const expected = await readFile(manifestFile, 'utf8');
  const box = await step('find the sandbox by id (no local state needed)', () => statebox.get(id));
  await step('resume', () => box.resume());
  const after = await step('verify every file, mode and symlink', () => manifest(box));
  if (after !== expected) {
    throw new Error(`State changed across suspend/resume.\n--- before\n${expected}\n--- after\n${after}`);
  }
  console.log(dim(`    ${after.trim().split('\n').length} entries identical`));
  const log = await step('git log still there', () => sh(box, 'git log --oneline', { cwd: 'inventory' }));
  console.log(dim(`    ${log.trim()}`));
  const tally = await step('the installed tool still runs', () =>
    sh(box, '. /root/.profile && tally inventory'),
  );
  console.log(dim(`    ${tally.trim().replace(/\n/g, ' | ')}`));

  console.log(bold('\nFork three lines of work from this state'));
  const strategies = {
    rename: `sed -i 's/\\bcalc\\b/computeTotal/g' src/store.js src/report.js test.js`,
    extract: `printf 'export function money(value) {\\n  return "$" + value.toFixed(2);\\n}\\n\\nexport function pad(text, width) {\\n  return String(text).padEnd(width);\\n}\\n' > src/format.js && sed -i '/^function money/,/^}/d; /^function pad/,/^}/d' src/report.js && sed -i "1a import { money, pad } from './format.js';" src/report.js`,
    types: `sed -i 's#^export function add#/** @param {string} name @param {number} price @param {number} quantity */\\nexport function add#; s#^export function calc#/** @returns {number} */\\nexport function calc#' src/store.js`,
  };
  const branches = [];
  for (const name of Object.keys(strategies)) {
    branches.push([
      name,
      await step(`fork '${name}'`, () => box.fork({ labels: { demo: 'seed', strategy: name } })),
    ]);
  }
  for (const [name, branch] of branches) {
    await step(`'${name}': refactor and commit in ${branch.id}`, () =>
      sh(
        branch,
        `${strategies[name]} && git checkout -qb ${name} && git add -A && git -c user.name=agent -c user.email=agent@example.com commit -qm "Refactor: ${name}"`,
        { cwd: 'inventory' },
      ),
    );
  }
  console.log(bold('\nThe branches diverge, the source is untouched'));
  const heads = new Set();
  for (const [name, branch] of branches) {
    const head = await sh(branch, 'git log --oneline -1 && git diff --stat HEAD~1 | tail -1', {
      cwd: 'inventory',
    });
    heads.add(head.split('\n')[0]);
    console.log(`  ${name.padEnd(8)} ${head.trim().replace(/\n/g, '  ·  ')}`);
    for (const [other] of branches) {
      if (other === name) continue;
      const seen =
        (await branch.exec(`git rev-parse --verify -q ${other}`, { cwd: 'inventory' })).exitCode === 0;
      if (seen) throw new Error(`branch '${name}' sees '${other}': forks are not isolated`);
    }
  }
  const source = await sh(box, 'git log --oneline -1 && git status --short | wc -l', { cwd: 'inventory' });
  console.log(`  ${'source'.padEnd(8)} ${source.trim().replace(/\n/g, '  ·  uncommitted changes: ')}`);
  if (heads.size !== branches.length) throw new Error('two branches ended on the same commit');
  if (!source.includes('Initial import')) throw new Error('the source moved');

  if (keep) {
    console.log(
      dim(`\nKept: ${[box, ...branches.map(([, branch]) => branch)].map((sandbox) => sandbox.id).join(' ')}`),
    );
  } else {
    await step('destroy the source and its branches', async () => {
      for (const [, branch] of branches) await branch.destroy();
      await box.destroy();
    });
  }
}

async function main() {
  if (args[0] === '--morning') {
    await morning(args[1], args[2]);
    return;
  }
  const started = performance.now();
  const { id, manifest: recorded } = await evening();
  const directory = await mkdtemp(join(tmpdir(), 'statebox-demo-'));
  const manifestFile = join(directory, 'manifest.txt');
  await writeFile(manifestFile, recorded);
  const extra = keep ? ['--keep'] : [];
  const code = await new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      [fileURLToPath(import.meta.url), '--morning', id, manifestFile, ...extra],
      {
        stdio: 'inherit',
      },
    );
    child.on('close', resolve);
  });
  await rm(directory, { recursive: true, force: true });
  if (code !== 0) {
    console.error(`\nThe morning session failed (exit ${code}); sandbox ${id} is kept for inspection.`);
    process.exit(1);
  }
  console.log(bold(`\nDone in ${((performance.now() - started) / 1000).toFixed(1)} s.`));
}

main().catch((error) => {
  console.error(`\n${error.name ?? 'Error'}: ${error.message}`);
  process.exit(1);
});

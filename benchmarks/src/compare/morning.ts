/**
 * The seed scenario's morning, in a process of its own: it knows only the driver spec, the sandbox id
 * and the evening's manifest (on stdin), and prints `MORNING <json>` (a `MorningResult`).
 * The clock starts at this module's first line, before the library is loaded.
 */
const started = performance.now();

import type { MorningResult, Survival } from './seed.ts';
import type { Box, DriverSpec } from './types.ts';

async function main(): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  const input = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
    spec: DriverSpec;
    id: string;
    manifest: string;
  };
  const { openDriver } = await import('./drivers.ts');
  const { isUnsupported, sh } = await import('./types.ts');
  const work = await import('./seed-work.ts');
  const driver = await openDriver(input.spec);
  const loadMs = performance.now() - started;

  let at = performance.now();
  const box = await driver.attach(input.id);
  const attachMs = performance.now() - at;
  let resumeMs: number | null = null;
  const { resume, fork } = driver;
  if (!isUnsupported(resume)) {
    at = performance.now();
    await resume(box);
    resumeMs = performance.now() - at;
  }
  at = performance.now();
  await sh(box, 'git log --oneline -1', 'inventory');
  const firstCommandMs = performance.now() - at;
  const firstUsefulMs = performance.now() - started;

  // What survived: files, the installed tool, the shell's state, the background process.
  const after = await box.exec(work.manifestCommand());
  const files: Survival =
    after.stdout === input.manifest
      ? {
          kept: true,
          detail: `all ${input.manifest.trim().split('\n').length} entries identical (content, mode, links)`,
        }
      : { kept: false, detail: `differs: ${diffSummary(input.manifest, after.stdout)}` };
  const tally = await box.exec('. "$HOME/.profile" && tally inventory');
  const toolKept: Survival =
    tally.exitCode === 0 && /js\s+\d+/.test(tally.stdout)
      ? { kept: true, detail: 'tally (installed under $HOME/.local) runs from PATH' }
      : { kept: false, detail: `tally exited ${tally.exitCode}: ${tally.stderr.trim().slice(0, 120)}` };
  const shell = driver.shell(box, 'seed');
  let shellKept: Survival;
  if (isUnsupported(shell)) shellKept = { kept: null, detail: `not supported: ${shell.unsupported}` };
  else {
    const seen = (await shell(work.shellProbe)).trim();
    shellKept =
      seen === work.shellExpected
        ? { kept: true, detail: 'cwd, exported variable and function restored in a new process' }
        : { kept: false, detail: `probe answered ${JSON.stringify(seen.slice(0, 80))}` };
  }
  const alive = await work.heartbeatAlive(box);
  const processes: Survival = alive
    ? { kept: true, detail: 'the background heartbeat still advances' }
    : {
        kept: false,
        detail: `the background heartbeat stopped (declared: suspend ${driver.declared.suspend})`,
      };

  let threeBranchesMs: number | null = null;
  let branchWorkMs: number | null = null;
  let branchesDiverged: boolean | null = null;
  const branchIds: string[] = [];
  if (!isUnsupported(fork)) {
    at = performance.now();
    const branches: Box[] = await Promise.all(
      Object.keys(work.strategies).map(async () => {
        const branch = await fork(box);
        branchIds.push(branch.id);
        await sh(branch, 'git status --short', 'inventory');
        return branch;
      }),
    );
    threeBranchesMs = performance.now() - at;
    at = performance.now();
    const names = Object.keys(work.strategies);
    await Promise.all(
      branches.map((branch, index) =>
        sh(
          branch,
          `${work.strategies[names[index]!]} && git checkout -qb ${names[index]} && git add -A && ${work.GIT} commit -qm "Refactor: ${names[index]}"`,
          'inventory',
        ),
      ),
    );
    branchWorkMs = performance.now() - at;
    const heads = new Set<string>();
    let isolated = true;
    for (const [index, branch] of branches.entries()) {
      heads.add((await sh(branch, 'git rev-parse HEAD', 'inventory')).trim());
      for (const other of names)
        if (
          other !== names[index] &&
          (await branch.exec(`git rev-parse --verify -q ${other}`, { cwd: 'inventory' })).exitCode === 0
        )
          isolated = false;
    }
    const source = await sh(box, 'git log --oneline -1 && git branch --list', 'inventory');
    branchesDiverged =
      isolated &&
      heads.size === 3 &&
      source.includes('Initial import') &&
      !/rename|extract|types/.test(source);
  }
  const result: MorningResult = {
    firstUsefulMs,
    steps: { load: loadMs, attach: attachMs, resume: resumeMs, firstCommand: firstCommandMs },
    resume: isUnsupported(resume) ? { unsupported: resume.unsupported } : null,
    threeBranchesMs,
    forkUnsupported: isUnsupported(fork) ? fork.unsupported : null,
    branchWorkMs,
    branchesDiverged,
    survived: { files, tool: toolKept, shell: shellKept, processes },
    branchIds,
  };
  process.stdout.write(`MORNING ${JSON.stringify(result)}\n`);
}

function diffSummary(before: string, after: string): string {
  const a = new Set(before.trim().split('\n'));
  const b = new Set(after.trim().split('\n'));
  const lost = [...a].filter((line) => !b.has(line));
  const added = [...b].filter((line) => !a.has(line));
  return `${lost.length} entries lost or changed (${lost.slice(0, 3).join(', ')}), ${added.length} new`;
}

main().catch((error: Error) => {
  process.stderr.write(`${error.stack ?? error.message}\n`);
  process.exit(1);
});

import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { time } from '../stats.ts';
import { GIT, heartbeatStart, manifestCommand, project, shellSetup, tool } from './seed-work.ts';
import { type Box, type Driver, type DriverSpec, isUnsupported, sh } from './types.ts';

/**
 * The seed scenario as a benchmark. Evening (this process): real work in the workspace, then idle,
 * then suspend. Morning (a new Node process, `morning.ts`): attach by id, resume, first useful
 * command, what survived, then three branches forked at once, each refactored and committed.
 */

export type Survival = { kept: boolean | null; detail: string };

export type MorningResult = {
  /** From the morning process's first line to the first useful command's answer, and its parts. */
  firstUsefulMs: number;
  steps: { load: number; attach: number; resume: number | null; firstCommand: number };
  resume: { unsupported: string } | null;
  /** From the first useful command to three forked branches that each answered a command. */
  threeBranchesMs: number | null;
  forkUnsupported: string | null;
  /** Each branch's refactor + commit, and whether the branches diverged while the source stayed put. */
  branchWorkMs: number | null;
  branchesDiverged: boolean | null;
  survived: { files: Survival; tool: Survival; shell: Survival; processes: Survival };
  branchIds: string[];
};

export type SeedResult = {
  backend: string;
  ok: boolean;
  error: string | null;
  evening: {
    workMs: number;
    idleMs: number;
    suspendMs: number | null;
    suspendUnsupported: string | null;
    entries: number;
  };
  morning: MorningResult | null;
  /** Bytes the suspended state holds: the work in the workspace and the installed tool (du -sb). */
  heldBytes: number | null;
  timeline: { phase: string; startMs: number; ms: number }[];
};

export async function runSeed(
  driver: Driver,
  spec: DriverSpec,
  options: { idleMs: number; progress(message: string): void },
): Promise<SeedResult> {
  const timeline: SeedResult['timeline'] = [];
  const started = performance.now();
  const phase = async <T>(name: string, action: () => Promise<T>): Promise<[T, number]> => {
    const at = performance.now();
    const value = await action();
    const ms = performance.now() - at;
    timeline.push({ phase: name, startMs: Math.round(at - started), ms: Math.round(ms) });
    return [value, ms];
  };
  let box: Box | undefined;
  let heartbeatPid: string | undefined;
  const result: SeedResult = {
    backend: driver.name,
    ok: false,
    error: null,
    evening: { workMs: 0, idleMs: options.idleMs, suspendMs: null, suspendUnsupported: null, entries: 0 },
    morning: null,
    heldBytes: null,
    timeline,
  };
  try {
    let manifest = '';
    const [, workMs] = await phase('evening work', async () => {
      box = await driver.create();
      for (const [path, content] of Object.entries(project)) await box.writeFile(path, content);
      await sh(box, `git init -q -b main && git add -A && ${GIT} commit -qm "Initial import"`, 'inventory');
      const files = await sh(box, 'git ls-files && wc -l src/*.js', 'inventory');
      await box.writeFile(
        'notes.md',
        `# Notes (evening)\n\n${files}\n- calc() is a vague name: rename it.\n`,
      );
      for (const [path, file] of Object.entries(tool)) await box.writeFile(path, file.content, file.mode);
      await sh(box, 'sh .bench/tally-1.0/install.sh && . "$HOME/.profile" && tally inventory > tally.txt');
      const shell = driver.shell(box, 'seed');
      if (!isUnsupported(shell)) await shell(shellSetup);
      heartbeatPid = (await sh(box, heartbeatStart)).trim();
      manifest = await sh(box, manifestCommand());
    });
    result.evening.workMs = Math.round(workMs);
    result.evening.entries = manifest.trim().split('\n').length;
    const held = await box!.exec(`du -sbc inventory notes.md tally.txt "$HOME/.local" | tail -1`);
    result.heldBytes = held.exitCode === 0 ? Number(held.stdout.trim().split(/\s+/)[0]) : null;
    await phase('idle', () => new Promise((resolve) => setTimeout(resolve, options.idleMs)));
    const { suspend } = driver;
    if (isUnsupported(suspend)) result.evening.suspendUnsupported = suspend.unsupported;
    else {
      const [, ms] = await phase('suspend', () => suspend(box!));
      result.evening.suspendMs = Math.round(ms);
    }
    options.progress(
      `${driver.name}: evening done, ${result.evening.entries} entries; the morning starts in a new process`,
    );
    const morningAt = performance.now() - started;
    const morning = await runMorning(spec, box!.id, manifest);
    result.morning = morning;
    // The child's own clock: place its steps on this timeline from the moment it was spawned.
    let at = morningAt;
    for (const [name, ms] of [
      ['new process + load', morning.steps.load],
      ['attach by id', morning.steps.attach],
      ['resume', morning.steps.resume],
      ['first useful command', morning.steps.firstCommand],
    ] as const) {
      if (ms === null) continue;
      timeline.push({ phase: name, startMs: Math.round(at), ms: Math.round(ms) });
      at += ms;
    }
    if (morning.threeBranchesMs !== null)
      timeline.push({
        phase: 'three branches ready',
        startMs: Math.round(at),
        ms: Math.round(morning.threeBranchesMs),
      });
    for (const id of morning.branchIds) await driver.destroy(await driver.attach(id)).catch(() => undefined);
    result.ok = true;
  } catch (error) {
    result.error = (error as Error).message;
    options.progress(`${driver.name}: seed scenario FAILED: ${result.error}`);
  } finally {
    // On a backend whose processes outlive everything (the peer runs on the host), end our heartbeat.
    if (box && heartbeatPid && /^\d+$/.test(heartbeatPid))
      await box.exec(`kill ${heartbeatPid} 2>/dev/null || true`).catch(() => undefined);
    if (box) await time(() => driver.destroy(box!)).catch(() => undefined);
  }
  return result;
}

/** Runs `morning.ts` in a new Node process and parses the result line it prints. */
function runMorning(spec: DriverSpec, id: string, manifest: string): Promise<MorningResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(import.meta.dirname, 'morning.ts')], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, ...(spec.kind === 'statebox' ? spec.env : {}) },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk;
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 300_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      const line = stdout.split('\n').find((text) => text.startsWith('MORNING '));
      if (code !== 0 || !line)
        return reject(new Error(`the morning process exited ${code}: ${stderr.trim().slice(-800)}`));
      resolve(JSON.parse(line.slice('MORNING '.length)) as MorningResult);
    });
    child.stdin.end(JSON.stringify({ spec, id, manifest }));
  });
}

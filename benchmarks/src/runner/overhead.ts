import type { Sandbox, Statebox } from '@statebox/core';
import { type StateboxEmulator, TRANSCRIPT_METADATA_KEY } from '@statebox/managed-agents-emulator';
import { createToolset, Runner, type RunnerEvent, SESSION_LABEL } from '@statebox/runner';
import { time } from '../stats.ts';
import {
  CorrectnessError,
  destroyEnvironmentSandboxes,
  type Summary,
  sessionProblems,
  summarize,
} from './measure.ts';
import { OVERHEAD_TRANSCRIPT, SMALL_CONTENT, SMALL_FILE } from './transcripts.ts';
import type { WireTap } from './wire.ts';

/** The runner's per-call overhead target: p50 over the bare provider operation. */
export const OVERHEAD_TARGET_MS = 5;

export type OverheadTool = 'bash' | 'read';

/** One series: what was timed, and its p50/p99. */
export type Measure = Summary & { id: string; description: string };

export type Overhead = {
  /** p50(series) − p50(bare), and the same at p99: the extra time per call. */
  p50: number;
  p99: number;
  targetMaxMs: number;
  met: boolean;
};

export type OverheadResult = {
  tool: OverheadTool;
  /** (a) the provider operation the tool performs, called directly. */
  bare: Measure;
  /** (b) the tool's `run()` from `createToolset`, called directly on the same sandbox. */
  toolRun: Measure;
  /** (c) inside the runner: SSE frame with the agent.tool_use received -> POST of its result started. */
  endToEnd: Measure;
  /** The runner's own `tool.done` ms for the calls of (c): the tool's run() under the runner. */
  runnerToolRun: Measure;
  /** Probes that split (b) − (a): the processes the tool starts, without the tool. */
  breakdown: Measure[];
  overhead: { toolLayer: Overhead; runner: Overhead };
};

type Probe = { id: string; description: string; run: () => Promise<void> };

/** The processes of the bash tool's outer script (sh, bash, mv, tail, rm and the files), minus its state. */
const bashShape = `d="\${HOME:-/root}/.statebox/bench"; [ -d "$d" ] || mkdir -p "$d"; o="$d/p.$$"
/bin/bash --noprofile --norc -c ': >|"$1"' /bin/bash "$o.state" </dev/null >"$o.out" 2>&1
r=$?
if [ -f "$o.state" ]; then mv -f "$o.state" "$d/s" && echo "ok $r"; fi
tail -c 102401 "$o.out"
rm -f "$o.out"`;

/** The processes of the read tool's script: bash, realpath (process substitution), stat (command substitution), cat. */
const readShape = `mapfile -d '' -t C < <(realpath -m -z -- /workspace ${SMALL_FILE} 2>/dev/null)
s=$(stat -c '%f %s' -- ${SMALL_FILE}) || exit 1
printf 'K\\0%s\\0' "$s"
exec cat -- ${SMALL_FILE}`;

function expectOutput(what: string, actual: string, expected: string): void {
  if (actual !== expected)
    throw new CorrectnessError(
      `${what} returned ${JSON.stringify(actual.slice(0, 80))}, expected ${JSON.stringify(expected.slice(0, 80))}`,
    );
}

function probes(
  tool: OverheadTool,
  sandbox: Sandbox,
  tools: Record<string, { run: (input: never) => Promise<unknown> }>,
): { bare: Probe; toolRun: Probe; breakdown: Probe[] } {
  const run = (name: string, input: unknown, context?: unknown) =>
    (tools[name]!.run as (input: unknown, context?: unknown) => Promise<unknown>)(input, context).then(
      (output) => String(output),
    );
  let journaled = 0;
  if (tool === 'bash') {
    return {
      bare: {
        id: 'bare',
        description: "sandbox.exec('true') (the exec the bash tool wraps)",
        run: async () => {
          const result = await sandbox.exec('true');
          if (result.exitCode !== 0) throw new CorrectnessError(`exec true exited ${result.exitCode}`);
        },
      },
      toolRun: {
        id: 'tool',
        description: "bash tool run({ command: 'true' }) via createToolset",
        run: async () => expectOutput('bash tool', await run('bash', { command: 'true' }), ''),
      },
      breakdown: [
        {
          id: 'exec_bash',
          description: "sandbox.exec('/bin/bash --noprofile --norc -c true'): + one bash start",
          run: async () => {
            const result = await sandbox.exec('/bin/bash --noprofile --norc -c true');
            if (result.exitCode !== 0) throw new CorrectnessError(`exec bash exited ${result.exitCode}`);
          },
        },
        {
          id: 'exec_tool_shape',
          description:
            "sandbox.exec of the tool's outer-script process shape (sh, bash, mv, tail, rm, output file) with no shell state",
          run: async () => {
            const result = await sandbox.exec(bashShape, {
              cwd: '/',
              env: { PS1: '', PS2: '', TERM: 'dumb' },
            });
            expectOutput('bash shape', result.stdout, 'ok 0\n');
          },
        },
        {
          id: 'tool_journaled',
          description:
            "bash tool run({ command: 'true' }) with a new tool_use id each call, as under the runner: (b) plus the call journal's claim and record",
          run: async () => {
            const toolUse = { type: 'tool_use', id: `toolu_bench${journaled++}`, name: 'bash', input: {} };
            expectOutput('journaled bash tool', await run('bash', { command: 'true' }, { toolUse }), '');
          },
        },
      ],
    };
  }
  return {
    bare: {
      id: 'bare',
      description: `sandbox.readFile('${SMALL_FILE}') (${Buffer.byteLength(SMALL_CONTENT)} bytes)`,
      run: async () => expectOutput('readFile', await sandbox.readFile(SMALL_FILE, 'utf8'), SMALL_CONTENT),
    },
    toolRun: {
      id: 'tool',
      description: `read tool run({ file_path: '${SMALL_FILE}' }) via createToolset`,
      run: async () => expectOutput('read tool', await run('read', { file_path: SMALL_FILE }), SMALL_CONTENT),
    },
    breakdown: [
      {
        id: 'exec_bash',
        description: `sandbox.exec(['/bin/bash', ..., 'exec cat -- ${SMALL_FILE}']): cat under bash instead of sh`,
        run: async () => {
          const result = await sandbox.exec([
            '/bin/bash',
            '--noprofile',
            '--norc',
            '-c',
            `exec cat -- ${SMALL_FILE}`,
          ]);
          expectOutput('exec bash cat', result.stdout, SMALL_CONTENT);
        },
      },
      {
        id: 'exec_tool_shape',
        description:
          "sandbox.exec of the read tool's process shape (bash, realpath, stat, cat), no tool code",
        run: async () => {
          const result = await sandbox.exec(['/bin/bash', '--noprofile', '--norc', '-c', readShape], {
            cwd: '/',
          });
          if (!result.stdout.endsWith(SMALL_CONTENT))
            throw new CorrectnessError('read shape returned other bytes');
        },
      },
    ],
  };
}

export type OverheadOptions = {
  emulator: StateboxEmulator;
  statebox: Statebox;
  tap: WireTap;
  /** Calls per series and tool (>= 200 for the real run). */
  calls: number;
  /** The series are split into this many interleaved blocks (order reversed every other round). */
  rounds: number;
  progress(message: string): void;
};

/**
 * Part 1: per-call overhead. One runner (concurrency 1) serves one session in the emulator; its sandbox
 * also serves the direct probes, so (a), (b) and (c) run on the same sandbox, in interleaved blocks.
 */
export async function measureOverhead(options: OverheadOptions): Promise<OverheadResult[]> {
  const { emulator, statebox, tap, progress } = options;
  const environment = emulator.createEnvironment('runner-bench-overhead');
  let sessionId = '';
  let toolDone: number[] = [];
  const errors: string[] = [];
  const onEvent = (event: RunnerEvent) => {
    if (event.type === 'tool.done' && event.sessionId === sessionId) toolDone.push(event.ms);
    if (event.type === 'error') errors.push(event.message);
  };
  const runner = new Runner({
    baseURL: emulator.url,
    environmentId: environment.id,
    environmentKey: environment.environmentKey,
    statebox,
    concurrency: 1,
    // The session stays served between the measured turns: no suspend, resume or new work item.
    idleMs: 600_000,
    memorySyncIntervalMs: null,
    pollBlockMs: 200,
    onEvent,
  });
  const running = runner.run();
  let turns = 0;
  const playTurn = async (message: string) => {
    toolDone = [];
    if (turns === 0) {
      sessionId = emulator.createSession({
        environmentId: environment.id,
        title: 'runner benchmark: overhead',
        metadata: { [TRANSCRIPT_METADATA_KEY]: OVERHEAD_TRANSCRIPT },
        message,
      });
    } else emulator.sendMessage(sessionId, message);
    turns++;
    const report = await emulator.waitForTurns(sessionId, turns, 300_000);
    const problems = sessionProblems(report);
    if (errors.length > 0) problems.push(...errors.map((error) => `runner error: ${error}`));
    if (problems.length > 0)
      throw new CorrectnessError(`overhead session ${sessionId}, turn "${message}": ${problems.join('; ')}`);
    const ids = report.turns.at(-1)!.steps.flatMap((step) => (step.eventId ? [step.eventId] : []));
    return { turnaround: tap.turnaround(ids), toolDone: [...toolDone], calls: ids.length };
  };

  try {
    await playTurn('setup');
    const [sandbox] = await statebox.list({ labels: { [SESSION_LABEL]: sessionId } });
    if (!sandbox) throw new Error(`the runner left no sandbox labelled ${SESSION_LABEL}=${sessionId}`);
    // A session id of its own: the direct bash calls keep a state file apart from the runner's.
    const tools = Object.fromEntries(
      createToolset({ sandbox, sessionId: `${sessionId}-direct` }).map((tool) => [tool.name, tool]),
    );
    const results: OverheadResult[] = [];
    for (const tool of ['bash', 'read'] as const) {
      const probe = probes(tool, sandbox, tools as never);
      const direct = [probe.bare, probe.toolRun, ...probe.breakdown];
      for (const each of direct) for (let index = 0; index < 5; index++) await each.run();
      const samples = new Map<string, number[]>(direct.map((each) => [each.id, []]));
      const endToEnd: number[] = [];
      const runnerToolRun: number[] = [];
      let runnerCalls = 0;
      const block = Math.ceil(options.calls / options.rounds);
      for (let round = 0; round < options.rounds; round++) {
        const count = Math.min(block, options.calls - round * block);
        if (count <= 0) break;
        const order: (Probe | 'runner')[] = [...direct, 'runner'];
        if (round % 2 === 1) order.reverse();
        for (const each of order) {
          if (each === 'runner') {
            const turn = await playTurn(`${tool} ${count}`);
            endToEnd.push(...turn.turnaround);
            runnerToolRun.push(...turn.toolDone);
            runnerCalls += turn.calls;
            continue;
          }
          const series = samples.get(each.id)!;
          for (let index = 0; index < count; index++) series.push(await time(each.run));
        }
        progress(`overhead ${tool}: round ${round + 1}/${options.rounds} (${count} calls per series)`);
      }
      if (endToEnd.length < runnerCalls)
        progress(
          `overhead ${tool}: ${runnerCalls - endToEnd.length} of ${runnerCalls} calls not seen on the wire`,
        );
      const measure = (each: Probe): Measure => ({
        id: each.id,
        description: each.description,
        ...summarize(samples.get(each.id)!),
      });
      const bare = measure(probe.bare);
      const toolRun = measure(probe.toolRun);
      const e2e: Measure = {
        id: 'runner',
        description:
          'in the runner: agent.tool_use SSE frame received -> POST of its user.tool_result started (timed at fetch)',
        ...summarize(endToEnd),
      };
      const overhead = (series: Summary): Overhead => {
        const p50 = Math.round((series.p50 - bare.p50) * 1000) / 1000;
        return {
          p50,
          p99: Math.round((series.p99 - bare.p99) * 1000) / 1000,
          targetMaxMs: OVERHEAD_TARGET_MS,
          met: p50 <= OVERHEAD_TARGET_MS,
        };
      };
      results.push({
        tool,
        bare,
        toolRun,
        endToEnd: e2e,
        runnerToolRun: {
          id: 'runner_tool_done',
          description: "the runner's tool.done ms for the same calls (the tool's run() inside the runner)",
          ...summarize(runnerToolRun),
        },
        breakdown: probe.breakdown.map(measure),
        overhead: { toolLayer: overhead(toolRun), runner: overhead(e2e) },
      });
    }
    return results;
  } finally {
    await runner.shutdown();
    await running.catch(() => undefined);
    await destroyEnvironmentSandboxes(statebox, environment.id).catch(() => undefined);
  }
}

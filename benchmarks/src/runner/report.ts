import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { RunnerBenchResult } from './index.ts';
import type { Measure, OverheadResult } from './overhead.ts';

function ms(value: number): string {
  if (!Number.isFinite(value)) return '-';
  if (value >= 10_000) return `${(value / 1000).toFixed(1)} s`;
  if (value >= 1000) return `${(value / 1000).toFixed(2)} s`;
  if (value >= 100) return `${value.toFixed(0)} ms`;
  return `${value.toFixed(2)} ms`;
}

function signed(value: number): string {
  return `${value >= 0 ? '+' : ''}${ms(value)}`;
}

function table(header: string[], rows: string[][], leftColumns: number): string[] {
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => row[column]!.length)),
  );
  const line = (cells: string[]) =>
    cells
      .map((cell, column) =>
        column < leftColumns ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!),
      )
      .join('  ')
      .trimEnd();
  return [line(header), line(widths.map((width) => '-'.repeat(width))), ...rows.map(line)];
}

function overheadRows(result: OverheadResult): string[][] {
  const row = (label: string, measure: Measure) => [
    result.tool,
    label,
    ms(measure.p50),
    ms(measure.p99),
    signed(measure.p50 - result.bare.p50),
    String(measure.count),
  ];
  return [
    row('(a) bare provider op', result.bare),
    row('(b) tool run() (createToolset)', result.toolRun),
    row('(c) runner: tool_use in -> result out', result.endToEnd),
    row('    runner tool.done (run() in runner)', result.runnerToolRun),
    ...result.breakdown.map((measure) => row(`    probe: ${measure.id}`, measure)),
  ];
}

function breakdownLine(result: OverheadResult): string {
  const [bash, shape] = result.breakdown;
  if (!bash || !shape) return '';
  const parts =
    result.tool === 'bash'
      ? [
          `bash start ${signed(bash.p50 - result.bare.p50)}`,
          `mv/tail/rm + output file ${signed(shape.p50 - bash.p50)}`,
          `state restore/save + tool code ${signed(result.toolRun.p50 - shape.p50)}`,
        ]
      : [
          `cat under bash instead of sh ${signed(bash.p50 - result.bare.p50)}`,
          `realpath + stat ${signed(shape.p50 - bash.p50)}`,
          `tool code + path checks ${signed(result.toolRun.p50 - shape.p50)}`,
        ];
  const journal = result.breakdown.find((measure) => measure.id === 'tool_journaled');
  if (journal) parts.push(`call journal ${signed(journal.p50 - result.toolRun.p50)}`);
  parts.push(`runner + SDK + HTTP ${signed(result.endToEnd.p50 - result.toolRun.p50)}`);
  return `  ${result.tool}: where (c) - (a) goes, p50: ${parts.join(', ')}`;
}

/** The human table: the overhead part with its breakdown, then one line per concurrency run. */
export function formatRunnerTable(result: RunnerBenchResult): string {
  const { machine, options } = result;
  const lines = [
    '',
    'statebox runner benchmark: local provider, Managed Agents emulator in-process (loopback HTTP)',
    `${machine.cpus} x ${machine.cpuModel}, Linux ${machine.kernel}, Node ${machine.node}, ` +
      `load ${machine.loadAverageBefore.join(' ')} -> ${machine.loadAverageAfter?.join(' ') ?? '?'}`,
    '',
    `1. Per-call overhead: ${options.calls} calls per series, ${options.rounds} interleaved rounds, one sandbox, same run`,
    '',
    ...table(['tool', 'series', 'p50', 'p99', 'vs (a) p50', 'n'], result.overhead.flatMap(overheadRows), 2),
    '',
  ];
  for (const each of result.overhead) {
    for (const [label, overhead] of [
      ['tool layer (b)-(a)', each.overhead.toolLayer],
      ['runner     (c)-(a)', each.overhead.runner],
    ] as const) {
      lines.push(
        `  ${each.tool} ${label}: p50 ${signed(overhead.p50)}, p99 ${signed(overhead.p99)}` +
          `   target p50 <= ${overhead.targetMaxMs} ms: ${overhead.met ? 'met' : 'NOT MET'}`,
      );
    }
  }
  lines.push(...result.overhead.map(breakdownLine).filter(Boolean));
  lines.push(
    '',
    `2. Concurrency: ${options.sessions} sessions created at once, ${result.concurrency[0]?.toolCallsPerSession ?? '?'} ` +
      `tool calls each (bash, write, read, edit, glob, grep), runner idleMs ${options.idleMs}`,
    '',
    ...table(
      [
        'concurrency',
        'wall',
        'turn p50',
        'turn p99',
        'call p50',
        'call p99',
        'run() p50',
        'run() p99',
        'sandbox p50',
        'calls/s',
        'correct',
      ],
      result.concurrency.map((run) => [
        String(run.concurrency),
        ms(run.wallMs),
        ms(run.sessionTurn.p50),
        ms(run.sessionTurn.p99),
        ms(run.toolCall.p50),
        ms(run.toolCall.p99),
        ms(run.toolRun.p50),
        ms(run.toolRun.p99),
        ms(run.sandboxReady.p50),
        run.callsPerSecond.toFixed(1),
        run.correctness.passed
          ? `yes (${run.correctness.sessionsPassed}/${run.sessions} sessions, ${run.correctness.answeredOnce}/${run.correctness.toolUses} answered once)`
          : `NO (${run.correctness.sessionsPassed}/${run.sessions} sessions, ${run.correctness.answeredOnce}/${run.correctness.toolUses} answered once)`,
      ]),
      1,
    ),
    '',
    '  turn = session created -> its turn ended; call = tool_use received -> result posted, in the runner',
    "  (calls read from the stream: each session's first call arrives with the history when the runner attaches);",
    "  run() = the runner's tool.done ms; sandbox = the runner's sandbox.ready ms (creating the session's sandbox)",
    '',
    result.correct
      ? 'correctness: every session passed, every expect held, every tool_use answered exactly once'
      : `RUN FAILED: ${result.error ?? 'a session was wrong'}`,
  );
  const targets = result.overhead.flatMap((each) => [each.overhead.toolLayer, each.overhead.runner]);
  if (targets.length > 0)
    lines.push(
      `targets (overhead p50 <= ${targets[0]!.targetMaxMs} ms): ${targets.filter((t) => t.met).length} of ${targets.length} met`,
    );
  return `${lines.join('\n')}\n`;
}

/** Writes `runner-<timestamp>.json` and, for a complete and correct run, `latest-runner.json`. */
export async function writeRunnerResults(result: RunnerBenchResult, directory: string): Promise<string[]> {
  await mkdir(directory, { recursive: true });
  const stamp = result.startedAt.replace(/:/g, '-');
  const json = `${JSON.stringify(result, null, 2)}\n`;
  const paths = [join(directory, `runner-${stamp}.json`)];
  if (result.ok && result.correct) paths.push(join(directory, 'latest-runner.json'));
  for (const path of paths) await writeFile(path, json);
  return paths;
}

import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { BenchmarkResult, Figure } from './harness.ts';

function formatMs(value: number): string {
  if (!Number.isFinite(value)) return '-';
  if (value >= 10_000) return `${(value / 1000).toFixed(1)} s`;
  if (value >= 1000) return `${(value / 1000).toFixed(2)} s`;
  if (value >= 100) return `${value.toFixed(0)} ms`;
  if (value >= 10) return `${value.toFixed(1)} ms`;
  return `${value.toFixed(2)} ms`;
}

function targetText(figure: Figure): string {
  if (!figure.target) return '';
  const parts: string[] = [];
  if (figure.target.maxMs !== undefined) parts.push(`<= ${figure.target.maxMs} ms`);
  if (figure.target.minSpeedup !== undefined) parts.push(`>= ${figure.target.minSpeedup}x`);
  return parts.join(', ');
}

/** The human table: one line per figure, then the baselines spelled out and the fidelity verdict. */
export function formatTable(result: BenchmarkResult): string {
  const header = ['operation', 'statebox', 'baseline', 'baseline value', 'ratio', 'target', 'met?'];
  const rows = result.figures.map((figure) => [
    figure.operation,
    formatMs(figure.statebox.value),
    figure.baseline?.name ?? '-',
    figure.baseline ? formatMs(figure.baseline.value) : '-',
    figure.speedup === null
      ? '-'
      : `${figure.speedup >= 100 ? figure.speedup.toFixed(0) : figure.speedup.toFixed(figure.speedup >= 10 ? 1 : 2)}x`,
    targetText(figure),
    figure.met === null ? '' : figure.met ? 'yes' : 'NO',
  ]);
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => row[column]!.length)),
  );
  const line = (cells: string[]) =>
    cells
      .map((cell, column) =>
        column === 0 || column === 2 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!),
      )
      .join('  ');
  const workspace = result.workspace;
  const lines = [
    '',
    `statebox benchmark: provider ${result.provider}, workspace ${result.size}` +
      (workspace ? ` (${workspace.files} files, ${(workspace.bytes / 1024 / 1024).toFixed(0)} MiB)` : ''),
    `${result.machine.cpus} x ${result.machine.cpuModel}, Linux ${result.machine.kernel}, Node ${result.machine.node}, ` +
      `load ${result.machine.loadAverageBefore.join(' ')} -> ${result.machine.loadAverageAfter?.join(' ') ?? '?'}`,
    `medians of ${result.options.runs} runs (exec: ${result.options.execRuns}; copy/archive baselines: ${result.options.baselineRuns}); ` +
      'ratio = baseline / statebox (how many times faster statebox is)',
    '',
    line(header),
    line(widths.map((width) => '-'.repeat(width))),
    ...rows.map(line),
    '',
    'baselines (measured in this run):',
    ...[
      ...new Map(
        result.figures
          .filter((figure) => figure.baseline)
          .map((figure) => [figure.baseline!.name, figure.baseline!]),
      ).values(),
    ].map(
      (baseline) =>
        `  ${baseline.name}: ${baseline.description}${baseline.derived ? ` [derived: ${baseline.derived}]` : ''}`,
    ),
    '',
    fidelityLine(result),
  ];
  const targets = result.figures.filter((figure) => figure.target);
  if (targets.length > 0)
    lines.push(`targets: ${targets.filter((figure) => figure.met).length} of ${targets.length} met`);
  return `${lines.join('\n')}\n`;
}

function fidelityLine(result: BenchmarkResult): string {
  const checks = result.fidelity.checks;
  const failed = checks.filter((check) => !check.ok);
  if (failed.length > 0) {
    return `FIDELITY FAILED: ${failed.map((check) => `after ${check.after}: ${check.problems.join('; ')}`).join(' | ')}`;
  }
  if (!result.ok)
    return `RUN FAILED before it completed: ${result.error} (${checks.length} fidelity checks had passed)`;
  const hashed = Object.keys(result.workspace?.manifest.hashes ?? {}).length;
  return `fidelity: all ${checks.length} checks passed (file count, sha256 of ${hashed} files incl. the big one, marker)`;
}

/** Writes `<provider>-<size>-<timestamp>.json` and, for a complete run, `latest-<provider>-<size>.json`. */
export async function writeResults(result: BenchmarkResult, directory: string): Promise<string[]> {
  await mkdir(directory, { recursive: true });
  // ISO 8601 with the colons replaced: colons are legal on Linux but not in Windows or some tooling.
  const stamp = result.startedAt.replace(/:/g, '-');
  const json = `${JSON.stringify(result, null, 2)}\n`;
  const paths = [join(directory, `${result.provider}-${result.size}-${stamp}.json`)];
  if (result.ok) paths.push(join(directory, `latest-${result.provider}-${result.size}.json`));
  for (const path of paths) await writeFile(path, json);
  return paths;
}

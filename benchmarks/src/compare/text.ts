import type { CompareResult } from './index.ts';
import type { Figure } from './lifecycle.ts';
import type { RawRow } from './raw.ts';
import type { Survival } from './seed.ts';

/** Shared formatting for the printed table, the README summary and the HTML page. */

export function formatMs(value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return '-';
  if (value >= 10_000) return `${(value / 1000).toFixed(1)} s`;
  if (value >= 1000) return `${(value / 1000).toFixed(2)} s`;
  if (value >= 100) return `${value.toFixed(0)} ms`;
  if (value >= 10) return `${value.toFixed(1)} ms`;
  return `${value.toFixed(2)} ms`;
}

export function figureText(figure: Figure | undefined): string {
  if (!figure) return 'failed';
  if ('unsupported' in figure) return 'not supported';
  return formatMs(figure.value);
}

/** A raw-SDK row's cells as the page and the summary show them: adapter, raw, overhead ms, overhead %. */
export function rawCells(row: RawRow): {
  adapter: string;
  raw: string;
  overheadMs: string;
  overheadPct: string;
} {
  const signed = (value: number, text: string) => `${value >= 0 ? '+' : '−'}${text}`;
  return {
    adapter: row.adapterMs === null ? 'failed' : formatMs(row.adapterMs),
    raw:
      row.noRawEquivalent !== null
        ? 'no raw equivalent'
        : row.rawMs === null
          ? 'failed'
          : formatMs(row.rawMs),
    overheadMs: row.overheadMs === null ? '-' : signed(row.overheadMs, formatMs(Math.abs(row.overheadMs))),
    overheadPct:
      row.overheadPct === null ? '-' : signed(row.overheadPct, `${Math.abs(row.overheadPct).toFixed(1)} %`),
  };
}

export function survivalText(survival: Survival): string {
  if (survival.kept === null) return 'not supported';
  return survival.kept ? 'kept' : 'lost';
}

export function usd(value: number | null): string {
  if (value === null) return 'unknown';
  if (value === 0) return '$0';
  return value < 0.01 ? `$${value.toFixed(4)}` : `$${value.toFixed(2)}`;
}

/** A night's cost: the sum, or what is known of it when a rate is not published. */
export function costText(row: { usd: number | null; knownUsd: number; confirmed: boolean }): string {
  if (row.usd === null)
    return row.knownUsd > 0
      ? `unknown (over ${usd(row.knownUsd)} + unpublished rates)`
      : 'unknown (rate not published)';
  return `${usd(row.usd)}${row.confirmed ? '' : ' (unconfirmed)'}`;
}

type Row = string[];

export function markdownTable(header: Row, rows: Row[]): string {
  const line = (cells: Row) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

/** The tables of a run as Markdown: lifecycle side by side, the seed scenario, overhead ratios, idle cost. */
export function summaryMarkdown(result: CompareResult): string {
  const available = result.lifecycle.map((lane) => lane.backend);
  const entry = (name: string) => result.backends.find((backend) => backend.name === name);
  const label = (name: string) => {
    const found = entry(name);
    return found?.available ? `${name} (${found.source})` : name;
  };
  const parts: string[] = [];
  parts.push(
    markdownTable(
      ['operation (median)', ...available.map(label)],
      result.operations.map(({ id, label: text }) => [
        text,
        ...result.lifecycle.map((lane) => figureText(lane.figures[id as keyof typeof lane.figures])),
      ]),
    ),
  );
  if (result.seed.length > 0) {
    parts.push(
      markdownTable(
        ['seed scenario', ...result.seed.map((seed) => label(seed.backend))],
        [
          ['evening work', ...result.seed.map((seed) => formatMs(seed.evening.workMs))],
          [
            'suspend',
            ...result.seed.map((seed) =>
              seed.evening.suspendUnsupported ? 'not supported' : formatMs(seed.evening.suspendMs),
            ),
          ],
          [
            'new process to first useful command',
            ...result.seed.map((seed) => formatMs(seed.morning?.firstUsefulMs)),
          ],
          [
            '  of which resume',
            ...result.seed.map((seed) =>
              seed.morning?.resume ? 'not supported' : formatMs(seed.morning?.steps.resume),
            ),
          ],
          [
            'three branches ready',
            ...result.seed.map((seed) =>
              seed.morning?.forkUnsupported ? 'not supported' : formatMs(seed.morning?.threeBranchesMs),
            ),
          ],
          [
            'files survived',
            ...result.seed.map((seed) =>
              seed.morning ? survivalText(seed.morning.survived.files) : 'failed',
            ),
          ],
          [
            'installed tool survived',
            ...result.seed.map((seed) =>
              seed.morning ? survivalText(seed.morning.survived.tool) : 'failed',
            ),
          ],
          [
            'shell state survived',
            ...result.seed.map((seed) =>
              seed.morning ? survivalText(seed.morning.survived.shell) : 'failed',
            ),
          ],
          [
            'processes survived',
            ...result.seed.map((seed) =>
              seed.morning ? survivalText(seed.morning.survived.processes) : 'failed',
            ),
          ],
        ],
      ),
    );
  }
  if (result.raw.length > 0) {
    parts.push(
      markdownTable(
        ['adapter vs raw SDK (median)', 'operation', 'statebox', 'raw SDK', 'overhead', 'overhead %'],
        result.raw.flatMap((raw) =>
          raw.rows.map((row) => {
            const cells = rawCells(row);
            return [
              `${label(raw.backend)}, ${raw.sdk}`,
              row.label,
              cells.adapter,
              cells.raw,
              cells.overheadMs,
              cells.overheadPct,
            ];
          }),
        ),
      ),
    );
    const failed = result.raw.filter((raw) => raw.error !== null);
    if (failed.length > 0)
      parts.push(failed.map((raw) => `- ${raw.backend}: the raw SDK side FAILED: ${raw.error}`).join('\n'));
  }
  parts.push(
    markdownTable(
      ['backend', `idle state (${result.costs.workload.idleHours} h)`, 'cost', 'keeps'],
      result.costs.rows.map((row) => [
        row.backend,
        `${row.state}${row.usedByStatebox ? ' *' : ''}`,
        costText(row),
        row.keeps,
      ]),
    ),
  );
  const missing = result.backends.filter((backend) => !backend.available);
  if (missing.length > 0)
    parts.push(
      missing
        .map((backend) => `- ${backend.name}: not available: ${'reason' in backend ? backend.reason : ''}`)
        .join('\n'),
    );
  return `${parts.join('\n\n')}\n`;
}

import type { CompareResult } from './index.ts';
import { costText, formatMs, rawCells, survivalText } from './text.ts';

/**
 * The comparison as one self-contained HTML page: inline CSS and SVG, no script, nothing fetched.
 * Every figure carries its source (real / emulator / live) in the table and the charts.
 */

const palette = ['#2563eb', '#d97706', '#059669', '#db2777', '#7c3aed', '#0891b2', '#65a30d'];
const phaseColors: Record<string, string> = {
  'evening work': '#94a3b8',
  idle: '#e2e8f0',
  suspend: '#f59e0b',
  'new process + load': '#a78bfa',
  'attach by id': '#60a5fa',
  resume: '#f97316',
  'first useful command': '#10b981',
  'three branches ready': '#ec4899',
};

export function esc(text: string): string {
  return text.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);
}

export function renderHtml(result: CompareResult): string {
  const lanes = result.lifecycle;
  const color = (name: string) =>
    palette[
      Math.max(
        0,
        lanes.findIndex((lane) => lane.backend === name),
      ) % palette.length
    ]!;
  const sourceOf = (name: string) => {
    const entry = result.backends.find((backend) => backend.name === name);
    return entry?.available ? entry.source : 'real';
  };
  const badge = (name: string) => `<span class="src src-${sourceOf(name)}">${sourceOf(name)}</span>`;
  const m = result.machine;

  const table = `<table class="figures"><thead><tr><th>operation (median)</th>${lanes
    .map(
      (lane) =>
        `<th><span class="dot" style="background:${color(lane.backend)}"></span>${esc(lane.backend)} ${badge(lane.backend)}</th>`,
    )
    .join('')}</tr></thead><tbody>${result.operations
    .map(
      ({ id, label }) =>
        `<tr><td>${esc(label)}</td>${lanes
          .map((lane) => {
            const figure = lane.figures[id as keyof typeof lane.figures];
            if (!figure) return '<td class="na">failed</td>';
            if ('unsupported' in figure)
              return `<td class="na" title="${esc(figure.unsupported)}">not supported</td>`;
            return `<td class="num" data-figure="${esc(lane.backend)}:${id}">${formatMs(figure.value)}</td>`;
          })
          .join('')}</tr>`,
    )
    .join('')}</tbody></table>`;

  const charts = result.operations
    .map(({ id, label }) => {
      const bars = lanes.map((lane) => ({
        name: lane.backend,
        figure: lane.figures[id as keyof typeof lane.figures],
      }));
      const values = bars.flatMap((bar) => (bar.figure && 'value' in bar.figure ? [bar.figure.value] : []));
      const max = Math.max(...values, 0.001);
      const rowHeight = 22;
      const height = bars.length * rowHeight + 8;
      const body = bars
        .map((bar, index) => {
          const y = 4 + index * rowHeight;
          const name = `<text x="0" y="${y + 14}" class="lbl">${esc(bar.name)}</text>`;
          if (!bar.figure || !('value' in bar.figure))
            return `${name}<text x="150" y="${y + 14}" class="na">${bar.figure ? 'not supported' : 'failed'}</text>`;
          const width = Math.max(1, (bar.figure.value / max) * 260);
          return `${name}<rect x="150" y="${y + 3}" width="${width.toFixed(1)}" height="14" rx="2" fill="${color(bar.name)}"><title>${esc(bar.name)}: ${formatMs(bar.figure.value)} (${sourceOf(bar.name)}, ${bar.figure.samples.length} samples)</title></rect><text x="${(156 + width).toFixed(1)}" y="${y + 14}" class="val">${formatMs(bar.figure.value)} · ${sourceOf(bar.name)}</text>`;
        })
        .join('');
      return `<figure class="chart"><figcaption>${esc(label)}</figcaption><svg role="img" aria-label="${esc(label)}" viewBox="0 0 520 ${height}" width="520" height="${height}">${body}</svg></figure>`;
    })
    .join('');

  const seed = result.seed;
  type SeedItem = (typeof seed)[number];
  const survivalRow = (kind: 'files' | 'tool' | 'shell' | 'processes', label: string): SeedRow => [
    label,
    (item) => {
      const survival = item.morning?.survived[kind];
      return survival ? `<span title="${esc(survival.detail)}">${survivalText(survival)}</span>` : 'failed';
    },
  ];
  type SeedRow = readonly [string, (item: SeedItem) => string];
  const seedRows: SeedRow[] = [
    ['evening work (repo, notes, tool, shell, process)', (item) => formatMs(item.evening.workMs)],
    [
      'suspend',
      (item) => (item.evening.suspendUnsupported ? 'not supported' : formatMs(item.evening.suspendMs)),
    ],
    ['new process → first useful command', (item) => formatMs(item.morning?.firstUsefulMs)],
    [
      '… of which resume',
      (item) => (item.morning?.resume ? 'not supported' : formatMs(item.morning?.steps.resume)),
    ],
    [
      'three branches ready',
      (item) => (item.morning?.forkUnsupported ? 'not supported' : formatMs(item.morning?.threeBranchesMs)),
    ],
    [
      'branches diverged, source untouched',
      (item) =>
        !item.morning || item.morning.branchesDiverged === null
          ? '-'
          : item.morning.branchesDiverged
            ? 'yes'
            : 'NO',
    ],
    survivalRow('files', 'files survived'),
    survivalRow('tool', 'installed tool survived'),
    survivalRow('shell', 'shell state survived'),
    survivalRow('processes', 'processes survived'),
  ];
  const seedTable = seed.length
    ? `<table class="figures"><thead><tr><th>seed scenario</th>${seed.map((item) => `<th>${esc(item.backend)} ${badge(item.backend)}</th>`).join('')}</tr></thead><tbody>${seedRows
        .map(
          ([label, cell]) =>
            `<tr><td>${esc(label)}</td>${seed.map((item) => `<td class="num">${cell(item)}</td>`).join('')}</tr>`,
        )
        .join('')}</tbody></table>${seed
        .filter((item) => item.error)
        .map((item) => `<p class="error">${esc(item.backend)}: ${esc(item.error!)}</p>`)
        .join('')}`
    : '<p>No backend ran the seed scenario.</p>';

  const timelineMax = Math.max(
    1,
    ...seed.flatMap((item) => item.timeline.map((step) => step.startMs + step.ms)),
  );
  const timelines = seed
    .map((item) => {
      const rects = item.timeline
        .map((step) => {
          const x = 150 + (step.startMs / timelineMax) * 400;
          const width = Math.max(1.5, (step.ms / timelineMax) * 400);
          return `<rect x="${x.toFixed(1)}" y="4" width="${width.toFixed(1)}" height="18" fill="${phaseColors[step.phase] ?? '#64748b'}"><title>${esc(step.phase)}: ${formatMs(step.ms)} (at ${formatMs(step.startMs)})</title></rect>`;
        })
        .join('');
      return `<svg role="img" aria-label="timeline ${esc(item.backend)}" viewBox="0 0 560 26" width="560" height="26"><text x="0" y="17" class="lbl">${esc(item.backend)}</text>${rects}</svg>`;
    })
    .join('');
  const legend = Object.entries(phaseColors)
    .map(
      ([phase, fill]) =>
        `<span class="key"><span class="dot" style="background:${fill}"></span>${esc(phase)}</span>`,
    )
    .join(' ');

  const raw = result.raw.length
    ? result.raw
        .map((item) => {
          const rows = item.rows
            .map((row) => {
              const cells = rawCells(row);
              const key = `${esc(item.backend)}:${row.operation}`;
              const rawCell =
                row.noRawEquivalent !== null
                  ? `<td class="na" data-raw="${key}:raw" title="${esc(row.noRawEquivalent)}">${cells.raw}: ${esc(row.noRawEquivalent)}</td>`
                  : `<td class="num" data-raw="${key}:raw">${cells.raw}</td>`;
              return `<tr><td>${esc(row.label)}</td><td class="num" data-raw="${key}:adapter">${cells.adapter}</td>${rawCell}<td class="num" data-raw="${key}:overheadMs">${cells.overheadMs}</td><td class="num" data-raw="${key}:overheadPct">${cells.overheadPct}</td><td class="num">${row.adapterSamples.length} / ${row.rawSamples.length}</td></tr>`;
            })
            .join('');
          return `<section class="raw" data-backend="${esc(item.backend)}"><h3>${esc(item.backend)} ${badge(item.backend)}: statebox beside ${esc(item.sdk)}</h3><p class="meta">Raw side timed ${esc(item.timedAt)}; it ran on ${item.sandbox === 'own' ? 'a sandbox of its own, loaded with the same workspace' : 'the adapter’s own sandbox'}.${item.error ? ` <span class="error">Raw side stopped: ${esc(item.error)}</span>` : ''}</p><table class="figures"><thead><tr><th>operation (median)</th><th>statebox</th><th>raw SDK</th><th>overhead</th><th>overhead %</th><th>samples</th></tr></thead><tbody>${rows}</tbody></table></section>`;
        })
        .join('')
    : '<p>No cloud adapter with a raw SDK ran in this run, so there is no adapter-vs-raw-SDK comparison (see “not available” above).</p>';

  const w = result.costs.workload;
  const costs = `<p>${w.idleHours} h idle; ${w.vcpus} vCPU, ${w.ramGiB} GiB RAM, ${w.diskGB} GB disk. ${esc(w.why)} Prices from <code>benchmarks/data/idle-prices.json</code> (updated ${esc(result.costs.updated)}); * = the state statebox leaves the backend in.</p><table class="figures"><thead><tr><th>backend</th><th>idle state</th><th>cost</th><th>keeps</th><th>holds</th><th>how</th></tr></thead><tbody>${result.costs.rows
    .map(
      (row) =>
        `<tr><td>${esc(row.backend)}</td><td>${esc(row.state)}${row.usedByStatebox ? ' *' : ''}</td><td class="num${row.confirmed ? '' : ' unconfirmed'}">${esc(costText(row))}</td><td>${esc(row.keeps)}</td><td>${esc(row.holds)}</td><td><small>${esc(row.formula)}${row.sources.length ? `<br>${row.sources.map(esc).join('<br>')}` : ''}</small></td></tr>`,
    )
    .join('')}</tbody></table>${seed
    .filter((item) => item.heldBytes !== null)
    .map(
      (item) =>
        `<p><small>${esc(item.backend)}: the seed session's work held ${(item.heldBytes! / 1024).toFixed(0)} KiB through the night (du of project, notes and tool).</small></p>`,
    )
    .join('')}`;

  const backends = `<ul>${result.backends
    .map((entry) =>
      entry.available
        ? `<li><b>${esc(entry.name)}</b> ${badge(entry.name)}: ${esc(entry.library)} on ${esc(entry.backend)}; suspend ${esc(entry.declared.suspend)}, fork ${esc(entry.declared.fork)}${entry.rawSdk ? `; raw SDK: ${esc(entry.rawSdk)}` : ''}</li>`
        : `<li class="unavailable"><b>${esc(entry.name)}</b> (${esc(entry.library)}): not available: ${esc(entry.reason)}</li>`,
    )
    .join('')}</ul>`;

  const checks = lanes
    .map((lane) => {
      const failed = lane.checks.filter((check) => !check.ok);
      return `<li>${esc(lane.backend)}: ${lane.checks.length - failed.length} of ${lane.checks.length} fidelity checks passed${lane.error ? `; <span class="error">stopped: ${esc(lane.error)}</span>` : ''}</li>`;
    })
    .join('');

  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>statebox provider comparison ${esc(result.runId)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#0f172a;margin:24px auto;max-width:1100px;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #e2e8f0;padding-bottom:4px}
table.figures{border-collapse:collapse;margin:8px 0}table.figures th,table.figures td{border:1px solid #e2e8f0;padding:4px 8px;text-align:left;vertical-align:top}
td.num{text-align:right;font-variant-numeric:tabular-nums}td small{word-break:break-word}td.na,.na{color:#94a3b8;font-style:italic}
.src{font-size:11px;border-radius:3px;padding:0 4px;color:#fff}.src-real{background:#15803d}.src-emulator{background:#b45309}.src-live{background:#1d4ed8}
.dot{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:4px}.charts{display:flex;flex-wrap:wrap;gap:8px 24px}
figure.chart{margin:0}figcaption{font-weight:600;margin:6px 0 2px}svg text{font:12px system-ui,sans-serif}svg .lbl{fill:#334155}svg .val{fill:#0f172a}svg .na{fill:#94a3b8;font-style:italic}
.unconfirmed{color:#b45309;font-size:11px}.error{color:#b91c1c}.unavailable{color:#64748b}.meta{color:#475569}.key{margin-right:10px;white-space:nowrap}
</style></head><body>
<h1>statebox provider comparison</h1>
<p class="meta">Run <code>${esc(result.runId)}</code>, ${esc(result.startedAt)} → ${esc(result.finishedAt)}; ${result.ok ? 'all checks passed' : '<span class="error">some backends failed (below)</span>'}.<br>
Machine: ${m.cpus} × ${esc(m.cpuModel)}, ${(m.memoryBytes / 2 ** 30).toFixed(1)} GiB, Linux ${esc(m.kernel)}, Node ${esc(m.node)}, load ${m.loadAverageBefore.join(' ')} → ${(m.loadAverageAfter ?? []).join(' ')}.<br>
Commit <code>${esc(m.commit ?? 'unknown')}</code>${m.dirty ? ' (packages/ had uncommitted changes)' : ''}. Workspace ${esc(result.options.size)} (${result.options.files} files); ${result.options.rounds} rounds, exec ${result.options.execPerRound} per round, interleaved (each operation on every backend in turn, the order rotating every round).</p>
<p>Sources: ${(Object.entries(result.sources) as [string, string][]).map(([key, text]) => `<span class="src src-${key}">${key}</span> ${esc(text)}`).join('; ')}.</p>
<h2>Backends</h2>${backends}
<h2>Side by side</h2>${table}<ul>${checks}</ul>
<h2>Per operation</h2><div class="charts">${charts}</div>
<h2>The seed scenario</h2>
<p>Evening: a git repository, notes and an installed tool in the workspace, state in the library's persistent shell, a background process; idle (${formatMs(result.options.idleMs)} here, standing for the night); suspend. Morning, in a new Node process: attach by id, resume, first useful command (<code>git log</code>), what survived, then three branches forked at once, each refactored and committed.</p>
${seedTable}
<h3>Timeline</h3><div>${timelines}</div><p>${legend}</p>
<h2>Adapter overhead against the raw vendor SDK</h2>
<p>For each cloud backend, the same operations straight through the vendor’s SDK against the same endpoint, in the same lifecycle rounds as the figures above (right after each statebox operation, or right before it every other round). The statebox medians are the side-by-side table’s own samples. Overhead = statebox − raw.</p>${raw}
<h2>What the night costs</h2>${costs}
<p class="meta">JSON: <code>benchmarks/results/compare-${esc(result.startedAt.replace(/:/g, '-'))}.json</code>. Reproduce: <code>pnpm bench -- --compare</code>.</p>
</body></html>
`;
}

/**
 * `pnpm bench -- --compare`: the same workload on every backend available in this run, interleaved;
 * the seed scenario; each cloud adapter beside its raw vendor SDK in the same rounds; the idle-cost model. Writes
 * `results/compare-<startedAt>.{json,html}` (and `latest-compare.*` for a complete run) and prints the
 * summary tables. Exit codes: 0 done, 1 a backend failed or lost state, 2 bad arguments.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { allBackends } from './src/compare/backends.ts';
import { idleCosts, loadPrices } from './src/compare/costs.ts';
import { renderHtml } from './src/compare/html.ts';
import { type CompareResult, runCompare } from './src/compare/index.ts';
import { summaryMarkdown } from './src/compare/text.ts';
import { workspaceSizes } from './src/workspace.ts';

const usage = `Usage: pnpm bench -- --compare [options]

  --backends <a,b,...>    only these (default: every one that can run here): ${allBackends.join(', ')}
  --live <a,b,...>        cloud backends to run live with their credentials instead of the emulator
                          (also STATEBOX_LIVE=<a,b>)
  --size <name>           ${Object.keys(workspaceSizes).join(' | ')} (default small)
  --rounds <n>            interleaved rounds of the lifecycle operations (default 5)
  --exec-runs <n>         exec samples per backend per round (default 40)
  --idle-ms <n>           the idle wait of the seed scenario, standing for the night (default 3000)
  --image <name>          image for docker (default statebox/debian:bookworm: the scenario needs git)
  --home <dir>            state directory (default: a temp dir, removed afterwards)
  --results-dir <dir>     where the JSON and HTML go (default benchmarks/results)
  --from <file.json>      no run: rebuild the HTML (and costs, from data/idle-prices.json) of an earlier run
`;

export async function main(argv: string[]): Promise<number> {
  const fail = (message: string): never => {
    process.stderr.write(`${message}\n\n${usage}`);
    process.exit(2);
  };
  let values: Record<string, string | boolean | undefined> = {};
  try {
    ({ values } = parseArgs({
      args: argv.filter((arg) => arg !== '--' && arg !== '--compare'),
      options: {
        backends: { type: 'string' },
        live: { type: 'string' },
        size: { type: 'string' },
        rounds: { type: 'string' },
        'exec-runs': { type: 'string' },
        'idle-ms': { type: 'string' },
        image: { type: 'string' },
        home: { type: 'string' },
        'results-dir': { type: 'string' },
        from: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }));
  } catch (error) {
    fail((error as Error).message);
  }
  if (values.help) {
    process.stdout.write(usage);
    return 0;
  }
  const count = (name: string, fallback: number, min = 1): number => {
    const given = values[name] as string | undefined;
    if (given === undefined) return fallback;
    const parsed = Number(given);
    if (!Number.isInteger(parsed) || parsed < min)
      fail(`--${name} must be an integer >= ${min}, got ${JSON.stringify(given)}`);
    return parsed;
  };
  const list = (name: string): string[] | undefined => {
    const given = values[name] as string | undefined;
    if (given === undefined) return undefined;
    const names = given
      .split(',')
      .map((item) => item.trim())
      .filter(Boolean);
    for (const item of names)
      if (!(allBackends as readonly string[]).includes(item))
        fail(`--${name}: unknown backend ${JSON.stringify(item)}`);
    return names;
  };
  const resultsDir = (values['results-dir'] as string | undefined) ?? join(import.meta.dirname, 'results');
  const progress = (message: string) =>
    process.stderr.write(`[compare ${new Date().toISOString().slice(11, 19)}] ${message}\n`);

  let result: CompareResult;
  if (values.from) {
    result = JSON.parse(await readFile(values.from as string, 'utf8')) as CompareResult;
    if (result.kind !== 'compare') fail(`${values.from} is not a comparison result`);
    result.costs = idleCosts(await loadPrices());
  } else {
    const sizeName = ((values.size as string | undefined) ?? 'small').toLowerCase();
    const size = workspaceSizes[sizeName] ?? fail(`Unknown size ${JSON.stringify(sizeName)}.`);
    result = await runCompare({
      size,
      rounds: count('rounds', 5),
      execPerRound: count('exec-runs', 40),
      idleMs: count('idle-ms', 3000, 0),
      only: list('backends'),
      // STATEBOX_LIVE names the adapters to run live, as in their conformance suites (docs/adding-an-adapter.md).
      live: [
        ...(list('live') ?? []),
        ...(process.env.STATEBOX_LIVE?.split(',').map((name) => name.trim()) ?? []),
      ],
      dockerImage:
        (values.image as string | undefined) ??
        (process.env.STATEBOX_DOCKER_IMAGE?.trim() || 'statebox/debian:bookworm'),
      home: values.home as string | undefined,
      progress,
    });
  }
  await mkdir(resultsDir, { recursive: true });
  const stamp = result.startedAt.replace(/:/g, '-');
  const json = `${JSON.stringify(result, null, 2)}\n`;
  const html = renderHtml(result);
  const written = [join(resultsDir, `compare-${stamp}.json`), join(resultsDir, `compare-${stamp}.html`)];
  await writeFile(written[0]!, json);
  await writeFile(written[1]!, html);
  if (result.ok) {
    written.push(join(resultsDir, 'latest-compare.json'), join(resultsDir, 'latest-compare.html'));
    await writeFile(written[2]!, json);
    await writeFile(written[3]!, html);
  }
  process.stdout.write(`\n${summaryMarkdown(result)}\n`);
  for (const path of written) process.stdout.write(`wrote ${path}\n`);
  if (!result.ok) {
    process.stderr.write('\nCOMPARISON FAILED: a backend failed or lost state (see the page and the JSON)\n');
    return 1;
  }
  return 0;
}

if (import.meta.main || process.argv[1] === import.meta.filename)
  process.exit(await main(process.argv.slice(2)));

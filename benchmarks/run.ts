/**
 * `pnpm bench [-- --provider local --size 700mb ...]`: runs the statebox benchmark for one provider and
 * workspace size, prints the table to stdout (progress to stderr) and writes the JSON results.
 * Exit codes: 0 done (or provider skipped, with the reason), 1 failed or state lost, 2 bad arguments.
 */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as harness from './src/harness.ts';
import { formatTable, writeResults } from './src/report.ts';
import { scenarios } from './src/scenarios.ts';
import { workspaceSizes } from './src/workspace.ts';

const usage = `Usage: pnpm bench [-- options]

  --scenario <name>       lifecycle (default) | runner (see: pnpm bench -- --scenario runner --help)
  --compare               every backend side by side (see: pnpm bench -- --compare --help)
  --provider <name>       ${Object.keys(scenarios).join(' | ')} | tensorlake (default local)
  --size <name>           ${Object.keys(workspaceSizes).join(' | ')} (default 700mb)
  --runs <n>              repetitions of each lifecycle op and file transfer (default 7)
  --exec-runs <n>         repetitions of exec (default 200)
  --baseline-runs <n>     repetitions of the copy/archive/extract baselines (default 3)
  --home <dir>            state directory (default: a temp dir under /tmp, removed afterwards)
  --image <name>          image for the docker provider and its baselines
  --results-dir <dir>     where the JSON goes (default benchmarks/results)
`;

function fail(message: string): never {
  process.stderr.write(`${message}\n\n${usage}`);
  process.exit(2);
}

function count(value: string | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 1)
    fail(`--${name} must be a positive integer, got ${JSON.stringify(value)}`);
  return parsed;
}

// pnpm passes a literal `--` through to the script; it separates nothing here.
let argv = process.argv.slice(2).filter((arg) => arg !== '--');
// `--compare` is the provider comparison (compare.ts), with options of its own.
if (argv.includes('--compare')) process.exit(await (await import('./compare.ts')).main(argv));
// `--scenario runner` is the runner benchmark (runner.ts), with options of its own; `lifecycle` is this one.
const scenarioAt = argv.findIndex((arg) => arg === '--scenario' || arg.startsWith('--scenario='));
if (scenarioAt >= 0) {
  const given = argv[scenarioAt]!;
  const name = given.includes('=') ? given.slice(given.indexOf('=') + 1) : argv[scenarioAt + 1];
  argv = argv.filter((_, index) => index !== scenarioAt && (given.includes('=') || index !== scenarioAt + 1));
  if (name === 'runner') process.exit(await (await import('./runner.ts')).main(argv));
  if (name !== 'lifecycle') fail(`Unknown scenario ${JSON.stringify(name)}: lifecycle | runner.`);
}
// `--provider daytona` compares the adapter with the raw @daytonaio/sdk in the same run (src/daytona.ts).
if (
  argv.some(
    (arg, index) => arg === '--provider=daytona' || (arg === '--provider' && argv[index + 1] === 'daytona'),
  )
) {
  process.exit(await (await import('./src/daytona.ts')).main(argv));
}
let values: Record<string, string | boolean | undefined>;
try {
  ({ values } = parseArgs({
    args: argv,
    options: {
      provider: { type: 'string' },
      size: { type: 'string' },
      runs: { type: 'string' },
      'exec-runs': { type: 'string' },
      'baseline-runs': { type: 'string' },
      home: { type: 'string' },
      image: { type: 'string' },
      'results-dir': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  }));
} catch (error) {
  fail((error as Error).message);
}
if (values.help) {
  process.stdout.write(usage);
  process.exit(0);
}
const providerName = (values.provider as string | undefined) ?? 'local';
// Tensorlake: the adapter beside the raw SDK, against the loopback emulator (src/tensorlake.ts).
if (providerName === 'tensorlake') {
  const { runTensorlakeBenchmark, formatTensorlakeTable } = await import('./src/tensorlake.ts');
  const progress = (message: string) =>
    process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
  const runs = count(values.runs as string | undefined, 7, 'runs');
  const execRuns = count(values['exec-runs'] as string | undefined, 60, 'exec-runs');
  const outcome = await runTensorlakeBenchmark({ runs, execRuns, progress });
  process.stdout.write(formatTensorlakeTable(outcome.rows));
  const resultsDir = (values['results-dir'] as string | undefined) ?? join(import.meta.dirname, 'results');
  const stamp = new Date().toISOString().replace(/:/g, '-');
  const { mkdir, writeFile } = await import('node:fs/promises');
  await mkdir(resultsDir, { recursive: true });
  const json = `${JSON.stringify({ provider: 'tensorlake', date: new Date().toISOString(), ...outcome }, null, 2)}\n`;
  for (const name of [`tensorlake-${stamp}.json`, 'latest-tensorlake.json']) {
    await writeFile(join(resultsDir, name), json);
    process.stdout.write(`wrote ${join(resultsDir, name)}\n`);
  }
  process.exit(0);
}
const scenario = scenarios[providerName] ?? fail(`Unknown provider ${JSON.stringify(providerName)}.`);
const sizeName = ((values.size as string | undefined) ?? '700mb').toLowerCase();
const size = workspaceSizes[sizeName] ?? fail(`Unknown size ${JSON.stringify(sizeName)}.`);
const resultsDir = (values['results-dir'] as string | undefined) ?? join(import.meta.dirname, 'results');
const progress = (message: string) =>
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`);

let interrupted = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    progress(`${signal}: destroying this run's sandboxes (again to exit at once)`);
    void (harness.abortCleanup?.() ?? Promise.resolve()).finally(() => process.exit(130));
  });
}

const outcome = await harness.runBenchmark({
  scenario,
  size,
  runs: count(values.runs as string | undefined, 7, 'runs'),
  execRuns: count(values['exec-runs'] as string | undefined, 200, 'exec-runs'),
  baselineRuns: count(values['baseline-runs'] as string | undefined, 3, 'baseline-runs'),
  home: values.home as string | undefined,
  image: values.image as string | undefined,
  progress,
});
if ('skipped' in outcome) {
  process.stdout.write(`statebox benchmark: provider ${providerName} SKIPPED: ${outcome.skipped}\n`);
  process.exit(0);
}
const { result } = outcome;
process.stdout.write(formatTable(result));
for (const path of await writeResults(result, resultsDir)) process.stdout.write(`wrote ${path}\n`);
if (!result.ok) {
  process.stderr.write(`\nBENCHMARK FAILED: ${result.error}\n`);
  process.exit(1);
}

/**
 * `node benchmarks/runner.ts [options]`, also `pnpm bench -- --scenario runner [options]`: the runner
 * benchmark (per-call overhead and concurrent sessions, local provider, emulator in-process). Prints the
 * table to stdout (progress to stderr) and writes the JSON results.
 * Exit codes: 0 done, 1 failed or any result wrong, 2 bad arguments.
 */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runRunnerBenchmark } from './src/runner/index.ts';
import { formatRunnerTable, writeRunnerResults } from './src/runner/report.ts';

const usage = `Usage: pnpm bench -- --scenario runner [options]   (or: node benchmarks/runner.ts [options])

  --calls <n>             calls per overhead series, each of bash and read (default 200)
  --rounds <n>            interleaved blocks the overhead series are split into (default 4)
  --sessions <n>          sessions created at once in the concurrency part (default 20)
  --concurrency <list>    runner concurrency values, comma-separated (default 20,10,4)
  --idle-ms <n>           runner idleMs in the concurrency part (default 500)
  --home <dir>            state directory (default: a temp dir under /tmp, removed afterwards)
  --results-dir <dir>     where the JSON goes (default benchmarks/results)
`;

export async function main(argv: string[]): Promise<number> {
  const fail = (message: string): never => {
    process.stderr.write(`${message}\n\n${usage}`);
    process.exit(2);
  };
  let values: Record<string, string | boolean | undefined> = {};
  try {
    ({ values } = parseArgs({
      args: argv.filter((arg) => arg !== '--'),
      options: {
        calls: { type: 'string' },
        rounds: { type: 'string' },
        sessions: { type: 'string' },
        concurrency: { type: 'string' },
        'idle-ms': { type: 'string' },
        home: { type: 'string' },
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
    return 0;
  }
  const count = (name: string, fallback: number, minimum = 1): number => {
    const value = values[name] as string | undefined;
    if (value === undefined) return fallback;
    const parsed = Number(value);
    if (!Number.isInteger(parsed) || parsed < minimum)
      fail(`--${name} must be an integer >= ${minimum}, got ${JSON.stringify(value)}`);
    return parsed;
  };
  const concurrency = ((values.concurrency as string | undefined) ?? '20,10,4').split(',').map((part) => {
    const parsed = Number(part.trim());
    if (!Number.isInteger(parsed) || parsed < 1)
      fail(`--concurrency takes positive integers, got ${JSON.stringify(part)}`);
    return parsed;
  });
  const resultsDir = (values['results-dir'] as string | undefined) ?? join(import.meta.dirname, 'results');
  const progress = (message: string) =>
    process.stderr.write(`[bench runner ${new Date().toISOString().slice(11, 19)}] ${message}\n`);

  const result = await runRunnerBenchmark({
    calls: count('calls', 200),
    rounds: count('rounds', 4),
    sessions: count('sessions', 20),
    concurrency,
    idleMs: count('idle-ms', 500, 0),
    home: values.home as string | undefined,
    progress,
  });
  process.stdout.write(formatRunnerTable(result));
  for (const path of await writeRunnerResults(result, resultsDir)) process.stdout.write(`wrote ${path}\n`);
  if (!result.ok || !result.correct) {
    process.stderr.write(`\nRUNNER BENCHMARK FAILED: ${result.error ?? 'a result was wrong'}\n`);
    return 1;
  }
  return 0;
}

if (import.meta.main || process.argv[1] === import.meta.filename)
  process.exit(await main(process.argv.slice(2)));

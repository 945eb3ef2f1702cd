/**
 * `node benchmarks/wrapper-costs.ts [--runs 30]` (after `pnpm build`): what the Tensorlake and Daytona
 * adapters' shell wrappers cost, against their loopback emulators. Prints, per emulator, the median cost
 * of one process started inside a sandbox (fork + exec, a subshell, a command substitution, a pipeline;
 * each sample is ten of them in one command, less a bare command), and the HTTP requests each adapter
 * operation makes (from the emulator's request log). See README.md, "Where the exec overhead goes".
 */
import { parseArgs } from 'node:util';
import { Daytona } from '@daytonaio/sdk';
import { startDaytonaForTests } from '@statebox/daytona/testing';
import { tensorlake } from '@statebox/tensorlake';
import { startEmulatedTensorlake } from '@statebox/tensorlake/testing';
import { SandboxClient } from 'tensorlake';
import { median } from './src/stats.ts';

const { values } = parseArgs({
  args: process.argv.slice(2).filter((arg) => arg !== '--'),
  options: { runs: { type: 'string' } },
});
const runs = Number(values.runs ?? 30);
const ten = (body: string) => `for i in 1 2 3 4 5 6 7 8 9 10; do ${body}; done`;
const probes: Record<string, string> = {
  'bare `true`': 'true',
  'fork + exec (/bin/true)': ten('/bin/true'),
  'subshell fork ( : )': ten('( : )'),
  'command substitution $(:)': ten('x=$(:)'),
  'pipeline (echo | base64)': ten('echo hi | base64 >/dev/null'),
};

async function perProcess(run: (script: string) => Promise<unknown>): Promise<void> {
  const samples: Record<string, number[]> = Object.fromEntries(Object.keys(probes).map((name) => [name, []]));
  for (let index = 0; index < runs; index += 1) {
    for (const [name, script] of Object.entries(probes)) {
      const started = performance.now();
      await run(script);
      samples[name]!.push(performance.now() - started);
    }
  }
  const bare = median(samples['bare `true`']!);
  for (const [name, values] of Object.entries(samples)) {
    const each = name.startsWith('bare') ? '' : `  ${((median(values) - bare) / 10).toFixed(2)} ms each`;
    process.stdout.write(`  ${name.padEnd(30)} ${median(values).toFixed(2).padStart(8)} ms${each}\n`);
  }
}

type Log = { entries: ReadonlyArray<{ method: string; path: string }> };
async function requests(log: Log, operation: string, work: () => Promise<unknown>): Promise<void> {
  const before = log.entries.length;
  await work();
  const made = log.entries
    .slice(before)
    .map((entry) => `${entry.method} ${entry.path.replace(/\/[0-9a-z-]{16,}(?=\/|$)/g, '/{id}')}`);
  process.stdout.write(`  ${operation.padEnd(22)} ${String(made.length).padStart(2)}  ${made.join(', ')}\n`);
}

const mib = new Uint8Array(1024 * 1024);
const exec = { cwd: '/workspace', maxOutputBytes: 1024 * 1024 };

type Adapter = Pick<
  ReturnType<typeof tensorlake>,
  'create' | 'exec' | 'writeFile' | 'readFile' | 'fork' | 'destroy'
>;
/** Prints the requests of each adapter operation on one sandbox and its fork; returns the sandbox's id. */
async function requestsPerOperation(name: string, provider: Adapter, log: Log, command: string[] | string) {
  let id = '';
  process.stdout.write(`${name}: requests per adapter operation\n`);
  await requests(log, 'create', async () => {
    id = (await provider.create({ labels: {} })).id;
  });
  await requests(log, 'exec', () => provider.exec(id, { command, ...exec }));
  await requests(log, 'writeFile 1 MiB', () => provider.writeFile(id, '/workspace/a.bin', mib));
  await requests(log, 'readFile 1 MiB', () =>
    provider.readFile(id, '/workspace/a.bin', { maxBytes: 1 << 26 }),
  );
  let child = '';
  await requests(log, 'fork', async () => {
    child = (await provider.fork(id, {})).id;
  });
  await requests(log, 'destroy (a fork)', () => provider.destroy(child));
  return id;
}
{
  const emulated = await startEmulatedTensorlake();
  const provider = tensorlake({ ...emulated.options, pollIntervalMs: 20 });
  const raw = new SandboxClient({ apiUrl: emulated.options.apiUrl, apiKey: emulated.options.apiKey }, true);
  const log = emulated.emulator.server.requests;
  try {
    const id = await requestsPerOperation('tensorlake', provider, log, ['echo', 'hello']);
    process.stdout.write('tensorlake: one process inside a sandbox (processes/run of /bin/sh -c)\n');
    const handle = raw.connect(id, undefined, undefined, undefined, undefined);
    await perProcess((script) => handle.run('/bin/sh', { args: ['-c', script] }));
    await provider.destroy(id);
  } finally {
    await emulated.close();
  }
}
{
  const emulated = await startDaytonaForTests({});
  const provider = emulated.newProvider({ tier: 'stop', autoStopAfter: 0 });
  const options = provider.options;
  const sdk = new Daytona({
    apiKey: options.apiKey,
    apiUrl: options.apiUrl,
    target: options.target,
    useDeprecatedPolling: options.polling,
    otelEnabled: false,
  });
  const log = emulated.emulator.server.requests;
  try {
    const id = await requestsPerOperation('daytona', provider, log, 'true');
    process.stdout.write('daytona: one process inside a sandbox (process/execute)\n');
    const sandbox = await sdk.get(id);
    await perProcess((script) => sandbox.process.executeCommand(script));
    await provider.destroy(id);
  } finally {
    await emulated.close();
  }
}

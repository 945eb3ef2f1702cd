import {
  closeProvider,
  formatMs,
  jsonOption,
  loadProvider,
  parseLabels,
  parseVerb,
  providerOption,
  UsageError,
  writeJson,
} from '../operate/common.js';

export const createUsage =
  'statebox create [--label KEY=VALUE]... [--image IMAGE] [--quiet] [--json] [--provider NAME]';

/** `statebox create`: a new running sandbox; prints its id (alone with --quiet, for scripts). */
export async function createCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseVerb(
    'create',
    argv,
    {
      ...providerOption,
      ...jsonOption,
      label: { type: 'string', multiple: true },
      image: { type: 'string' },
      quiet: { type: 'boolean', short: 'q' },
    },
    createUsage,
  );
  if (values.help) {
    process.stdout.write(`${createUsage}\n`);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`create takes no arguments besides flags: ${createUsage}`);
  const labels = parseLabels(values.label as string[] | undefined);
  const provider = await loadProvider(values.provider as string | undefined);
  try {
    const started = performance.now();
    const info = await provider.create({ labels, ...(values.image && { image: values.image as string }) });
    const ms = performance.now() - started;
    if (values.json) writeJson({ ...info, ms });
    else if (values.quiet) process.stdout.write(`${info.id}\n`);
    else process.stdout.write(`created ${info.id} in ${formatMs(ms)}\n`);
    return 0;
  } finally {
    await closeProvider(provider);
  }
}

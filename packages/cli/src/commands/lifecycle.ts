import { ProviderError, SandboxNotFoundError, type SandboxProvider } from '@statebox/core';
import {
  closeProvider,
  errorLine,
  formatMs,
  jsonOption,
  loadProvider,
  parseLabels,
  parseVerb,
  providerOption,
  UsageError,
  writeJson,
} from '../operate/common.js';

export const lifecycleVerbs = ['suspend', 'resume', 'fork', 'destroy'] as const;
export type LifecycleVerb = (typeof lifecycleVerbs)[number];

const usages: Record<LifecycleVerb, string> = {
  suspend: 'statebox suspend ID... [--json] [--provider NAME]',
  resume: 'statebox resume ID... [--json] [--provider NAME]',
  fork: 'statebox fork ID... [--count N] [--label KEY=VALUE]... [--quiet] [--json] [--provider NAME]',
  destroy: 'statebox destroy ID... [--json] [--provider NAME]',
};

const progressWords: Record<LifecycleVerb, [string, string]> = {
  suspend: ['suspending', 'suspended'],
  resume: ['resuming', 'resumed'],
  fork: ['forking', 'forked'],
  destroy: ['destroying', 'destroyed'],
};

type Outcome = {
  id: string;
  action: LifecycleVerb;
  ok: boolean;
  ms: number;
  status?: string;
  childId?: string;
  error?: string;
};

async function act(
  provider: SandboxProvider,
  verb: LifecycleVerb,
  sandboxId: string,
  labels: Record<string, string>,
): Promise<Omit<Outcome, 'ms' | 'ok' | 'action' | 'id'>> {
  switch (verb) {
    case 'suspend':
      return { status: (await provider.suspend(sandboxId)).status };
    case 'resume':
      return { status: (await provider.resume(sandboxId)).status };
    case 'fork':
      return { childId: (await provider.fork(sandboxId, { labels })).id };
    case 'destroy': {
      // destroy() accepts unknown ids (it is idempotent); a person who typed one wants to hear so.
      // A corrupt record (ProviderError) is exactly what destroy is for, so only not-found stops here.
      await provider.get(sandboxId).catch((error: unknown) => {
        if (!ProviderError.isInstance(error)) throw error;
      });
      await provider.destroy(sandboxId);
      return { status: 'destroyed' };
    }
  }
}

/** `statebox suspend|resume|fork|destroy ID...`: each in turn, with a progress line and its time. */
export async function lifecycleCommand(verb: LifecycleVerb, argv: string[]): Promise<number> {
  const usage = usages[verb];
  const { values, positionals } = parseVerb(
    verb,
    argv,
    {
      ...providerOption,
      ...jsonOption,
      ...(verb === 'fork' && {
        label: { type: 'string', multiple: true },
        count: { type: 'string' },
        quiet: { type: 'boolean', short: 'q' },
      }),
    },
    usage,
  );
  if (values.help) {
    process.stdout.write(`${usage}\n`);
    return 0;
  }
  if (positionals.length === 0) throw new UsageError(`${verb} needs at least one sandbox id: ${usage}`);
  const labels = parseLabels(values.label as string[] | undefined);
  const count = values.count === undefined ? 1 : Number(values.count);
  if (!Number.isInteger(count) || count < 1 || count > 100) {
    throw new UsageError(`--count '${String(values.count)}' must be a whole number from 1 to 100.`);
  }
  const provider = await loadProvider(values.provider as string | undefined);
  const [doing, done] = progressWords[verb];
  const live = process.stderr.isTTY && !values.json && !values.quiet;
  const outcomes: Outcome[] = [];
  try {
    for (const sandboxId of positionals) {
      for (let index = 0; index < (verb === 'fork' ? count : 1); index++) {
        if (live) process.stderr.write(`${doing} ${sandboxId}…`);
        const started = performance.now();
        try {
          const result = await act(provider, verb, sandboxId, labels);
          const outcome: Outcome = {
            id: sandboxId,
            action: verb,
            ok: true,
            ms: performance.now() - started,
            ...result,
          };
          outcomes.push(outcome);
          if (live) process.stderr.write('\r\x1b[K');
          if (values.json) continue;
          if (values.quiet) process.stdout.write(`${outcome.childId ?? sandboxId}\n`);
          else if (verb === 'fork')
            process.stdout.write(`${done} ${sandboxId} -> ${outcome.childId} in ${formatMs(outcome.ms)}\n`);
          else process.stdout.write(`${done} ${sandboxId} in ${formatMs(outcome.ms)}\n`);
        } catch (error) {
          if (live) process.stderr.write('\r\x1b[K');
          outcomes.push({
            id: sandboxId,
            action: verb,
            ok: false,
            ms: performance.now() - started,
            error: errorLine(error).trim(),
          });
          process.stderr.write(errorLine(error));
          // A source that is gone has no further forks to make.
          if (SandboxNotFoundError.isInstance(error)) break;
        }
      }
    }
    if (values.json) writeJson(outcomes);
    return outcomes.every((outcome) => outcome.ok) ? 0 : 1;
  } finally {
    await closeProvider(provider);
  }
}

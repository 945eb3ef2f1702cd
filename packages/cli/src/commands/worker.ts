import Anthropic from '@anthropic-ai/sdk';
import { ConfigError } from '@statebox/core';
import { Runner } from '@statebox/runner';
import { watchLaunchers } from '../launchers.js';
import { dim, formatRunnerEvent } from '../print.js';

export type WorkerCommandOptions = {
  concurrency?: number;
  idleMs?: number;
  forkAcrossAgents?: boolean;
  json?: boolean;
  env?: NodeJS.ProcessEnv;
};

/**
 * `statebox worker`: serves the self-hosted environment until SIGTERM or SIGINT, then drains the tools
 * in flight, suspends the sandboxes and stops the work items.
 */
export async function workerCommand(options: WorkerCommandOptions): Promise<void> {
  const env = options.env ?? process.env;
  const environmentKey = env.ANTHROPIC_ENVIRONMENT_KEY;
  const environmentId = env.STATEBOX_ENVIRONMENT_ID ?? env.ANTHROPIC_ENVIRONMENT_ID;
  if (!environmentKey) {
    throw new ConfigError(
      'ANTHROPIC_ENVIRONMENT_KEY',
      'statebox worker needs ANTHROPIC_ENVIRONMENT_KEY: generate it in the Console (Environments > your self-hosted environment > Generate environment key).',
    );
  }
  if (!environmentId) {
    throw new ConfigError(
      'STATEBOX_ENVIRONMENT_ID',
      'statebox worker needs STATEBOX_ENVIRONMENT_ID (env_...).',
    );
  }
  // One call before polling, so a wrong key or environment id is one clear line (the poller would
  // throw the same answer from its loop and its sweep).
  const client = new Anthropic({
    apiKey: null,
    authToken: environmentKey,
    ...(env.ANTHROPIC_BASE_URL && { baseURL: env.ANTHROPIC_BASE_URL }),
  });
  await client.beta.environments.work.list(environmentId, { limit: 1 });
  const started = performance.now();
  const runner = new Runner({
    environmentId,
    environmentKey,
    ...(env.ANTHROPIC_BASE_URL && { baseURL: env.ANTHROPIC_BASE_URL }),
    ...(options.concurrency !== undefined && { concurrency: options.concurrency }),
    ...(options.idleMs !== undefined && { idleMs: options.idleMs }),
    ...(options.forkAcrossAgents && { forkAcrossAgents: true }),
    onEvent: (event) => {
      if (options.json) {
        process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), ...event })}\n`);
      } else {
        const elapsed = dim(`+${((performance.now() - started) / 1000).toFixed(1).padStart(6)}s`);
        process.stdout.write(`${elapsed} ${formatRunnerEvent(event)}\n`);
      }
    },
  });
  const stop = () => void runner.shutdown();
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  const unwatch = watchLaunchers((command) => {
    process.stderr.write(`statebox worker: its launcher (${command}) exited; draining as on SIGTERM\n`);
    stop();
  });
  try {
    await runner.run();
  } finally {
    unwatch();
  }
}

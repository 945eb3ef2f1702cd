import { parseArgs } from 'node:util';
import { isStateboxError } from '@statebox/core';
import { appClient, appConfigFromEnv, ensureAgentAndEnvironment } from './app.js';
import { demoCommand } from './commands/demo.js';
import { emulatorCommand } from './commands/emulator.js';
import { runForks, runTurn } from './commands/session.js';
import { workerCommand } from './commands/worker.js';
import { isOperatorVerb, operatorUsage, runOperatorVerb } from './operate/index.js';
import { red } from './print.js';

const usage = `statebox: sandboxes whose state outlives their compute

Usage:
  statebox demo [--provider local|docker] [--json]
      The seed scenario, offline: a Managed Agents session clones, reads, writes notes and installs a
      tool; it idles and its sandbox is suspended; the next morning a new worker process resumes it;
      three sessions then fork from that state. Live against Anthropic when ANTHROPIC_API_KEY is set.
  statebox session "PROMPT" [--continue SESSION] [--json]
      Start a session (or continue one) on the configured agent and self-hosted environment, and
      print its stream.
  statebox session --fork SESSION --branches N --prompt "..." [--prompt "..."] [--json]
      Start N sessions that branch from SESSION's sandbox (one --prompt each, or one for all).
  statebox worker [--concurrency N] [--idle SECONDS] [--json]
      Serve the self-hosted environment: run every tool call in a statebox sandbox.
  statebox emulator [--port N] [--transcripts DIR]
      An offline Managed Agents API on loopback, for development and tests.
${operatorUsage}
Environment:
  ANTHROPIC_API_KEY, ANTHROPIC_BASE_URL          application side (session)
  ANTHROPIC_ENVIRONMENT_KEY, STATEBOX_ENVIRONMENT_ID   worker side
  STATEBOX_AGENT_ID, STATEBOX_MODEL              optional; otherwise an agent named "statebox" is reused or created
  STATEBOX_PROVIDER, STATEBOX_HOME               which sandboxes (local by default) and where their state lives
`;

async function main(argv: string[]): Promise<number> {
  if (isOperatorVerb(argv[0])) return runOperatorVerb(argv);
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      continue: { type: 'string' },
      fork: { type: 'string' },
      branches: { type: 'string' },
      prompt: { type: 'string', multiple: true },
      concurrency: { type: 'string' },
      idle: { type: 'string' },
      port: { type: 'string' },
      transcripts: { type: 'string' },
      provider: { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const [command, ...rest] = positionals;
  if (values.help || !command) {
    process.stdout.write(usage);
    return command || values.help ? 0 : 1;
  }
  switch (command) {
    case 'session': {
      const config = appConfigFromEnv();
      const client = appClient(config);
      const { agentId, environmentId } = await ensureAgentAndEnvironment(client, config);
      if (values.fork) {
        const count = Number(values.branches ?? values.prompt?.length ?? 1);
        const prompts = values.prompt ?? (rest[0] ? [rest[0]] : []);
        if (!Number.isInteger(count) || count < 1 || prompts.length === 0) {
          throw new Error('--fork needs --branches N (a positive integer) and at least one --prompt');
        }
        const branches = Array.from({ length: count }, (_, index) => ({
          label: `branch-${index + 1}`,
          prompt: prompts[index] ?? prompts[prompts.length - 1]!,
        }));
        await runForks(client, {
          agentId,
          environmentId,
          from: values.fork,
          prompts: branches,
          json: values.json,
        });
        return 0;
      }
      const prompt = rest[0] ?? values.prompt?.[0];
      if (!prompt) throw new Error('statebox session needs a prompt: statebox session "PROMPT"');
      await runTurn(client, {
        agentId,
        environmentId,
        prompt,
        json: values.json,
        ...(values.continue && { continueSession: values.continue }),
      });
      return 0;
    }
    case 'worker':
      await workerCommand({
        json: values.json,
        ...(values.concurrency && { concurrency: Number(values.concurrency) }),
        ...(values.idle && { idleMs: Number(values.idle) * 1000 }),
      });
      return 0;
    case 'emulator':
      await emulatorCommand({
        ...(values.port && { port: Number(values.port) }),
        ...(values.transcripts && { transcripts: values.transcripts }),
      });
      return 0;
    case 'demo':
      return demoCommand({ json: values.json, ...(values.provider && { provider: values.provider }) });
    default:
      process.stderr.write(`Unknown command '${command}'.\n\n${usage}`);
      return 1;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    const name = isStateboxError(error) ? error.name : error instanceof Error ? error.name : 'Error';
    process.stderr.write(`${red(name)}: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  },
);

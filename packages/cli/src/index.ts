import { parseArgs } from 'node:util';
import { appClient, appConfigFromEnv, ensureAgentAndEnvironment } from './app.js';
import { demoCommand } from './commands/demo.js';
import { emulatorCommand } from './commands/emulator.js';
import { runForks, runTurn } from './commands/session.js';
import { workerCommand } from './commands/worker.js';
import { describeFailure, integerFlag, UsageError } from './errors.js';
import { isOperatorVerb, operatorUsage, runOperatorVerb } from './operate/index.js';
import { red } from './print.js';

const usage = `statebox: sandboxes whose state outlives their compute

Usage:
  statebox demo [--provider local|docker|daytona] [--json]
      The seed scenario, offline: a Managed Agents session clones, reads, writes notes and installs a
      tool; it idles and its sandbox is suspended; the next morning a new worker process resumes it;
      three sessions then fork from that state. Live against Anthropic when ANTHROPIC_API_KEY is set.
  statebox session "PROMPT" [--continue SESSION] [--json]
      Start a session (or continue one) on the configured agent and self-hosted environment, and
      print its stream.
  statebox session --fork SESSION --branches N --prompt "..." [--prompt "..."] [--json]
      Start N sessions that branch from SESSION's sandbox (one --prompt each, or one for all).
  statebox worker [--concurrency N] [--idle SECONDS] [--fork-across-agents] [--json]
      Serve the self-hosted environment: run every tool call in a statebox sandbox. Run as many
      workers (processes, machines) on one environment as you like; SIGTERM drains one.
  statebox emulator [--port N] [--transcripts DIR]
      An offline Managed Agents API on loopback, for development and tests. It plays the demo's
      transcripts (and those in DIR) and prints the variables to export for session and worker.
${operatorUsage}
Environment:
  ANTHROPIC_API_KEY, ANTHROPIC_BASE_URL          application side (session)
  ANTHROPIC_ENVIRONMENT_KEY, STATEBOX_ENVIRONMENT_ID   worker side
  STATEBOX_AGENT_ID, STATEBOX_MODEL              optional; otherwise an agent named "statebox" is reused or created
  STATEBOX_PROVIDER, STATEBOX_HOME               which sandboxes (local by default) and where their state lives
`;

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      continue: { type: 'string' },
      fork: { type: 'string' },
      branches: { type: 'string' },
      prompt: { type: 'string', multiple: true },
      concurrency: { type: 'string' },
      idle: { type: 'string' },
      'fork-across-agents': { type: 'boolean', default: false },
      port: { type: 'string' },
      transcripts: { type: 'string' },
      provider: { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
}

/** Which credential a command uses, so an error names the right variable. */
let role: 'application' | 'worker' = 'application';

async function main(argv: string[]): Promise<number> {
  if (isOperatorVerb(argv[0])) return runOperatorVerb(argv);
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
  const { values, positionals } = parsed;
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
        const count = integerFlag('branches', values.branches, 1, 64) ?? values.prompt?.length ?? 1;
        const prompts = values.prompt ?? (rest[0] ? [rest[0]] : []);
        if (prompts.length === 0) throw new UsageError('--fork needs at least one --prompt "..."');
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
      if (!prompt) throw new UsageError('statebox session needs a prompt: statebox session "PROMPT"');
      await runTurn(client, {
        agentId,
        environmentId,
        prompt,
        json: values.json,
        ...(values.continue && { continueSession: values.continue }),
      });
      return 0;
    }
    case 'worker': {
      role = 'worker';
      const concurrency = integerFlag('concurrency', values.concurrency, 1, 1024);
      const idle = integerFlag('idle', values.idle, 1);
      await workerCommand({
        json: values.json,
        forkAcrossAgents: values['fork-across-agents'],
        ...(concurrency !== undefined && { concurrency }),
        ...(idle !== undefined && { idleMs: idle * 1000 }),
      });
      return 0;
    }
    case 'emulator': {
      const port = integerFlag('port', values.port, 0, 65535);
      await emulatorCommand({
        ...(port !== undefined && { port }),
        ...(values.transcripts && { transcripts: values.transcripts }),
      });
      return 0;
    }
    case 'demo':
      return demoCommand({ json: values.json, ...(values.provider && { provider: values.provider }) });
    default:
      throw new UsageError(`unknown command '${command}'`);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    if (error instanceof UsageError) {
      process.stderr.write(`${red('statebox')}: ${error.message}. See \`statebox --help\`.\n`);
      process.exitCode = 2;
      return;
    }
    process.stderr.write(`${red('statebox')}: ${describeFailure(error, role)}\n`);
    process.exitCode = 1;
  },
);

import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import Anthropic from '@anthropic-ai/sdk';
import { createStatebox, type Statebox } from '@statebox/core';
import { startEmulator } from '@statebox/managed-agents-emulator';
import { ENVIRONMENT_LABEL, SESSION_LABEL } from '@statebox/runner';
import { ensureAgentAndEnvironment } from '../app.js';
import {
  demoTranscripts,
  eveningPrompt,
  forkPrompt,
  morningPrompt,
  strategies,
} from '../demo-transcripts.js';
import { bold, dim, green, red } from '../print.js';
import { startProviderEmulator } from '../provider-emulators.js';
import { runForks, runTurn } from './session.js';

export type DemoOptions = { json?: boolean; provider?: string; idleSeconds?: number };

type Backend = {
  mode: 'offline' | 'live';
  client: Anthropic;
  agentId: string;
  environmentId: string;
  environmentKey: string;
  baseURL: string | undefined;
  /** Offline only: the scripted agent's verdict on every tool result of a session. */
  verdicts?: (sessionId: string) => { passed: number; failed: { step: number; reason: string }[] };
  close(): Promise<void>;
};

/**
 * `statebox demo`: the seed scenario end to end.
 *
 * Evening: a session clones a repository, reads it, writes an analysis and notes, installs a tool, and
 * leaves its shell in the project with a variable exported. It idles; the worker suspends its sandbox.
 * The worker process is stopped: nothing runs overnight. Morning: a new worker process, a new message;
 * the sandbox is resumed with every file and the shell where it was. Then three sessions fork from that
 * state and each commits a different refactoring on its own branch, isolated from the others.
 *
 * Offline (no ANTHROPIC_API_KEY) the Managed Agents API is the loopback emulator and the agent is
 * scripted, with every tool result checked. With ANTHROPIC_API_KEY, STATEBOX_ENVIRONMENT_ID and
 * ANTHROPIC_ENVIRONMENT_KEY it runs live against Anthropic.
 */
export async function demoCommand(options: DemoOptions): Promise<number> {
  if (options.provider) process.env.STATEBOX_PROVIDER = options.provider;
  const idleSeconds = options.idleSeconds ?? 2;
  const started = performance.now();
  const say = (line: string) => process.stdout.write(`${line}\n`);
  const step = (line: string) =>
    say(`${dim(`+${((performance.now() - started) / 1000).toFixed(1).padStart(5)}s`)} ${line}`);
  const providerEmulator = await startProviderEmulator();
  if (providerEmulator) say(dim(providerEmulator.description));
  const statebox = createStatebox();
  const provider = await statebox.provider();
  const backend = await openBackend();
  say(
    bold(
      `statebox demo (${backend.mode}, provider '${provider.name}', suspend keeps: ${provider.capabilities.suspend})`,
    ),
  );
  const workers: ChildProcess[] = [];
  const sessions: string[] = [];
  try {
    say(bold('\nEvening: the first work session'));
    let worker = startWorker(backend, 1, idleSeconds);
    workers.push(worker);
    const evening = await runTurn(backend.client, {
      agentId: backend.agentId,
      environmentId: backend.environmentId,
      prompt: eveningPrompt,
      title: 'seed: evening',
      label: 'session',
      ...(options.json !== undefined && { json: options.json }),
    });
    sessions.push(evening.sessionId);
    const suspendedAt = await waitForStatus(statebox, evening.sessionId, 'suspended', 60_000);
    step(
      `${green('✓')} the session idled for ${idleSeconds} s and the worker suspended its sandbox ${dim(suspendedAt.sandboxId)}`,
    );
    await stopWorker(worker);
    step(`${green('✓')} worker 1 stopped: overnight, nothing runs and the sandbox holds no compute`);

    say(bold('\nNext morning: a new worker process, a new message'));
    worker = startWorker(backend, 2, idleSeconds);
    workers.push(worker);
    await runTurn(backend.client, {
      agentId: backend.agentId,
      environmentId: backend.environmentId,
      prompt: morningPrompt,
      continueSession: evening.sessionId,
      label: 'session',
      ...(options.json !== undefined && { json: options.json }),
    });

    say(bold('\nThree lines of work fork from that state'));
    const forks = await runForks(backend.client, {
      agentId: backend.agentId,
      environmentId: backend.environmentId,
      from: evening.sessionId,
      prompts: strategies.map((strategy) => ({ label: strategy, prompt: forkPrompt(strategy) })),
      ...(options.json !== undefined && { json: options.json }),
    });
    sessions.push(...forks.map((fork) => fork.sessionId));

    say(bold('\nThe branches diverged; the source is untouched'));
    let ok = true;
    for (const [index, fork] of forks.entries()) {
      const box = (await statebox.list({ labels: { [SESSION_LABEL]: fork.sessionId } }))[0];
      if (!box) throw new Error(`no sandbox for fork session ${fork.sessionId}`);
      if (box.status === 'suspended') await box.resume();
      const head = await box.exec('git log --oneline -1 && git diff --stat HEAD~1 | tail -1', {
        cwd: '/workspace/inventory',
      });
      say(`  ${strategies[index]!.padEnd(8)} ${head.stdout.trim().replace(/\n/g, dim('  ·  '))}`);
    }
    const source = (await statebox.list({ labels: { [SESSION_LABEL]: evening.sessionId } }))[0];
    if (source) {
      if (source.status === 'suspended') await source.resume();
      const head = await source.exec(
        'git log --oneline -1; git branch --format="%(refname:short)" | tr "\\n" " "',
        {
          cwd: '/workspace/inventory',
        },
      );
      say(`  ${'source'.padEnd(8)} ${head.stdout.trim().replace(/\n/g, dim('  ·  branches: '))}`);
    }
    if (backend.verdicts) {
      say(bold('\nEvery tool result, checked by the scripted agent'));
      for (const sessionId of sessions) {
        const verdict = backend.verdicts(sessionId);
        const mark = verdict.failed.length === 0 ? green('✓') : red('✗');
        say(`  ${mark} ${sessionId}: ${verdict.passed} passed, ${verdict.failed.length} failed`);
        for (const failure of verdict.failed) say(red(`      step ${failure.step}: ${failure.reason}`));
        if (verdict.failed.length > 0) ok = false;
      }
    }
    say(bold(`\n${ok ? 'Done' : 'FAILED'} in ${((performance.now() - started) / 1000).toFixed(1)} s.`));
    return ok ? 0 : 1;
  } finally {
    await Promise.all(workers.map(stopWorker));
    if (backend.mode === 'offline') {
      for (const box of await statebox.list({ labels: { [ENVIRONMENT_LABEL]: backend.environmentId } })) {
        await box.destroy().catch(() => undefined);
      }
    }
    await backend.close();
    await providerEmulator?.close();
  }

  async function openBackend(): Promise<Backend> {
    if (process.env.ANTHROPIC_API_KEY) {
      const environmentKey = process.env.ANTHROPIC_ENVIRONMENT_KEY;
      if (!environmentKey || !process.env.STATEBOX_ENVIRONMENT_ID) {
        throw new Error(
          'Live mode needs STATEBOX_ENVIRONMENT_ID and ANTHROPIC_ENVIRONMENT_KEY besides ANTHROPIC_API_KEY ' +
            '(unset ANTHROPIC_API_KEY to run the offline demo).',
        );
      }
      const baseURL = process.env.ANTHROPIC_BASE_URL;
      const client = new Anthropic({ apiKey: process.env.ANTHROPIC_API_KEY, ...(baseURL && { baseURL }) });
      const ids = await ensureAgentAndEnvironment(client, {
        apiKey: process.env.ANTHROPIC_API_KEY,
        environmentId: process.env.STATEBOX_ENVIRONMENT_ID,
        model: process.env.STATEBOX_MODEL ?? 'claude-sonnet-4-6',
        ...(process.env.STATEBOX_AGENT_ID && { agentId: process.env.STATEBOX_AGENT_ID }),
      });
      return { mode: 'live', client, ...ids, environmentKey, baseURL, close: async () => undefined };
    }
    const emulator = await startEmulator({ transcripts: demoTranscripts });
    const client = new Anthropic({ apiKey: emulator.apiKey, baseURL: emulator.url });
    const environment = await emulator.createEnvironment('statebox-demo');
    const { agentId } = await ensureAgentAndEnvironment(client, {
      apiKey: emulator.apiKey,
      environmentId: environment.id,
      model: 'scripted',
    });
    return {
      mode: 'offline',
      client,
      agentId,
      environmentId: environment.id,
      environmentKey: environment.environmentKey,
      baseURL: emulator.url,
      verdicts: (sessionId) => {
        const report = emulator.report(sessionId);
        const tools = report.steps.filter((step) => step.type === 'tool_use');
        const failed = tools
          .filter((step) => !step.pass)
          .map((step) => ({
            step: step.index + 1,
            reason: `${step.transcript} ${step.name}: ${step.reason ?? 'failed'}`,
          }));
        for (const [toolUseId, count] of Object.entries(report.answers)) {
          if (count !== 1) failed.push({ step: 0, reason: `${toolUseId} answered ${count} times` });
        }
        return { passed: tools.filter((step) => step.pass).length, failed };
      },
      close: async () => {
        if (process.env.STATEBOX_DEBUG) {
          for (const request of emulator.requests) process.stderr.write(`${JSON.stringify(request)}\n`);
        }
        await emulator.close();
      },
    };
  }
}

/** A `statebox worker` in its own process, its log lines prefixed. */
function startWorker(backend: Backend, index: number, idleSeconds: number): ChildProcess {
  // The CLI is bundled into one file, so this module's URL is the CLI itself.
  const cli = fileURLToPath(import.meta.url);
  const child = spawn(process.execPath, [cli, 'worker', '--idle', String(idleSeconds)], {
    env: {
      ...process.env,
      ANTHROPIC_ENVIRONMENT_KEY: backend.environmentKey,
      STATEBOX_ENVIRONMENT_ID: backend.environmentId,
      ...(backend.baseURL && { ANTHROPIC_BASE_URL: backend.baseURL }),
      // The worker authenticates with the environment key only.
      ANTHROPIC_API_KEY: '',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const prefix = dim(`  worker ${index} │ `);
  for (const stream of [child.stdout!, child.stderr!]) {
    let buffered = '';
    stream.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines) process.stdout.write(`${prefix}${line}\n`);
    });
  }
  return child;
}

async function stopWorker(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 45_000);
  await exited;
  clearTimeout(timer);
}

async function waitForStatus(
  statebox: Statebox,
  sessionId: string,
  status: 'suspended' | 'running',
  timeoutMs: number,
): Promise<{ sandboxId: string }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const [box] = await statebox.list({ labels: { [SESSION_LABEL]: sessionId } });
    if (box?.status === status) return { sandboxId: box.id };
    if (Date.now() > deadline) {
      throw new Error(`the sandbox of session ${sessionId} did not become ${status} within ${timeoutMs} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

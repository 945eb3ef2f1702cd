import type Anthropic from '@anthropic-ai/sdk';
import { FORK_FROM_METADATA } from '@statebox/runner';
import { bold, dim, formatSessionEvent, green, yellow } from '../print.js';

export type SessionRun = {
  sessionId: string;
  label?: string;
  prompt: string;
  /** Session metadata for a new session (e.g. the fork source). */
  metadata?: Record<string, string>;
};

export type SessionOutcome = {
  sessionId: string;
  stopReason: string;
  ms: number;
  toolCalls: number;
  errors: number;
};

/** Creates a session (unless continuing one), sends the prompt, and prints its stream until the turn ends. */
export async function runTurn(
  client: Anthropic,
  options: {
    agentId: string;
    environmentId: string;
    prompt: string;
    continueSession?: string;
    metadata?: Record<string, string>;
    title?: string;
    label?: string;
    json?: boolean;
    write?: (line: string) => void;
  },
): Promise<SessionOutcome> {
  const write = options.write ?? ((line: string) => process.stdout.write(`${line}\n`));
  const started = performance.now();
  const sessionId =
    options.continueSession ??
    (
      await client.beta.sessions.create({
        agent: options.agentId,
        environment_id: options.environmentId,
        ...(options.title && { title: options.title }),
        ...(options.metadata && { metadata: options.metadata }),
      })
    ).id;
  const prefix = options.label ? `${options.label.padEnd(9)} ` : '';
  const elapsed = () => dim(`+${((performance.now() - started) / 1000).toFixed(1).padStart(5)}s`);
  if (!options.json) {
    write(`${prefix}${elapsed()} ${bold(options.continueSession ? 'continue' : 'session')} ${sessionId}`);
  }
  // Open the stream first: it only carries events emitted after it opens.
  const stream = await client.beta.sessions.events.stream(sessionId);
  await client.beta.sessions.events.send(sessionId, {
    events: [{ type: 'user.message', content: [{ type: 'text', text: options.prompt }] }],
  });
  let toolCalls = 0;
  let errors = 0;
  let stopReason = 'stream ended';
  const watch = watchForWorker(client, options.environmentId, sessionId, (line) =>
    write(`${prefix}${elapsed()} ${line}`),
  );
  try {
    for await (const event of stream as AsyncIterable<{ type: string; [key: string]: unknown }>) {
      watch.saw(event);
      if (options.json) write(JSON.stringify({ session: sessionId, ...event }));
      if (event.type === 'agent.tool_use' || event.type === 'agent.custom_tool_use') toolCalls++;
      if ((event.type === 'user.tool_result' || event.type === 'user.custom_tool_result') && event.is_error)
        errors++;
      const line = options.json ? undefined : formatSessionEvent(event);
      if (line) write(`${prefix}${elapsed()} ${line}`);
      if (event.type === 'session.status_idle') {
        const reason = (event.stop_reason as { type?: string } | undefined)?.type ?? 'unknown';
        if (reason !== 'requires_action') {
          stopReason = reason;
          break;
        }
      }
      if (event.type === 'session.status_terminated' || event.type === 'session.deleted') {
        stopReason = 'terminated';
        break;
      }
    }
  } finally {
    watch.stop();
  }
  const ms = performance.now() - started;
  if (!options.json) {
    write(
      `${prefix}${elapsed()} ${green('done')} ${dim(`${toolCalls} tool calls, ${errors} errors, ${stopReason}`)}`,
    );
  }
  return { sessionId, stopReason, ms, toolCalls, errors };
}

/** Starts one session per prompt, each branching from `from`'s sandbox, and runs them side by side. */
export async function runForks(
  client: Anthropic,
  options: {
    agentId: string;
    environmentId: string;
    from: string;
    prompts: { label: string; prompt: string }[];
    json?: boolean;
  },
): Promise<SessionOutcome[]> {
  return Promise.all(
    options.prompts.map(({ label, prompt }) =>
      runTurn(client, {
        agentId: options.agentId,
        environmentId: options.environmentId,
        prompt,
        label,
        title: `${label} (fork of ${options.from})`,
        metadata: { [FORK_FROM_METADATA]: options.from },
        ...(options.json !== undefined && { json: options.json }),
      }),
    ),
  );
}

const HINT_AFTER_MS = 30_000;
const PROGRESS_EVERY_MS = 10_000;

/**
 * While the session waits on this side (the first event after the message, or a tool call's result),
 * prints progress every 10 s, and after 30 s says what is missing: a tool result comes only from a
 * worker serving the session's environment, so the hint names the environment and the queue's state.
 */
function watchForWorker(
  client: Anthropic,
  environmentId: string,
  sessionId: string,
  write: (line: string) => void,
): { saw(event: { type: string }): void; stop(): void } {
  let waitingSince: number | undefined = performance.now();
  let lastProgress = performance.now();
  let hinted = false;
  const timer = setInterval(() => {
    if (waitingSince === undefined) return;
    const waited = performance.now() - waitingSince;
    if (waited >= HINT_AFTER_MS && !hinted) {
      hinted = true;
      void client.beta.environments.work
        .stats(environmentId)
        .then(
          (stats) => `queue depth ${stats.depth}, ${stats.workers_polling} worker(s) polling`,
          () => 'queue state unknown',
        )
        .then((queue) =>
          write(
            yellow(
              `no worker has answered ${sessionId} in ${Math.round(waited / 1000)} s: is \`statebox worker\` running for ${environmentId}? (${queue})`,
            ),
          ),
        );
    } else if (performance.now() - lastProgress >= PROGRESS_EVERY_MS) {
      lastProgress = performance.now();
      write(dim(`waiting for a worker (${Math.round(waited / 1000)} s)`));
    }
  }, 1000);
  timer.unref();
  return {
    saw(event) {
      if (event.type === 'agent.tool_use' || event.type === 'agent.custom_tool_use') {
        waitingSince ??= performance.now();
        lastProgress = performance.now();
      } else if (event.type === 'session.status_idle') {
        // A requires_action idle keeps the wait for the tool results.
      } else {
        waitingSince = undefined;
        hinted = false;
      }
    },
    stop: () => clearInterval(timer),
  };
}

import type { RunnerEvent } from '@statebox/runner';

const color = process.stdout.isTTY && !process.env.NO_COLOR;
export const dim = (text: string) => (color ? `\x1b[2m${text}\x1b[0m` : text);
export const bold = (text: string) => (color ? `\x1b[1m${text}\x1b[0m` : text);
export const green = (text: string) => (color ? `\x1b[32m${text}\x1b[0m` : text);
export const red = (text: string) => (color ? `\x1b[31m${text}\x1b[0m` : text);
export const yellow = (text: string) => (color ? `\x1b[33m${text}\x1b[0m` : text);
export const cyan = (text: string) => (color ? `\x1b[36m${text}\x1b[0m` : text);

/** One line, at most `width` characters, for a terminal. */
export function oneLine(text: string, width = 100): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > width ? `${flat.slice(0, width - 1)}…` : flat;
}

type SessionEvent = { type: string; [key: string]: unknown };

/** The argument a person wants to see for a tool call: the command, the path, or the pattern. */
export function toolArgument(input: Record<string, unknown>): string {
  const value = input.command ?? input.file_path ?? input.pattern ?? input.url ?? input.query;
  if (typeof value === 'string') return value;
  if (input.restart) return '(restart)';
  return JSON.stringify(input);
}

/**
 * A session event as a person watches it: `[thinking] …`, `[bash] git clone …`, `[read] /workspace/x`,
 * the agent's text, and tool results as `↳ ok` or `↳ error: …`. Returns undefined for events not worth a line.
 */
export function formatSessionEvent(event: SessionEvent): string | undefined {
  switch (event.type) {
    case 'agent.thinking':
      return dim('[thinking] …');
    case 'agent.tool_use':
    case 'agent.custom_tool_use':
      return `${cyan(`[${String(event.name)}]`)} ${oneLine(toolArgument((event.input ?? {}) as Record<string, unknown>))}`;
    case 'agent.message': {
      const text = ((event.content ?? []) as { type: string; text?: string }[])
        .filter((block) => block.type === 'text')
        .map((block) => block.text)
        .join('');
      return text ? `${bold('agent:')} ${oneLine(text, 160)}` : undefined;
    }
    case 'user.tool_result':
    case 'user.custom_tool_result': {
      const text = ((event.content ?? []) as { type: string; text?: string }[])
        .filter((block) => block.type === 'text')
        .map((block) => block.text)
        .join('');
      return event.is_error
        ? red(`  ↳ error: ${oneLine(text, 120)}`)
        : dim(`  ↳ ${oneLine(text || 'ok', 120)}`);
    }
    case 'session.status_idle': {
      const reason = (event.stop_reason as { type?: string } | undefined)?.type;
      return reason === 'requires_action' ? undefined : dim(`[idle] ${reason ?? ''}`);
    }
    case 'session.status_terminated':
      return dim('[terminated]');
    case 'session.error':
      return red(`[error] ${String((event.error as { message?: string } | undefined)?.message ?? '')}`);
    default:
      return undefined;
  }
}

/** A runner event as a line for the worker's log. */
export function formatRunnerEvent(event: RunnerEvent): string {
  const session = 'sessionId' in event && event.sessionId ? dim(`${event.sessionId} `) : '';
  switch (event.type) {
    case 'runner.started':
      return `worker ${event.workerId} polling environment ${event.environmentId}`;
    case 'runner.stopping':
      return `stopping: draining ${event.sessions.length} session(s)`;
    case 'runner.stopped':
      return 'stopped';
    case 'work.claimed':
      return `${session}claimed ${event.workId}`;
    case 'sandbox.ready':
      return `${session}sandbox ${event.sandboxId} ${event.how}${event.from ? ` from ${event.from}` : ''} ${dim(`${event.ms.toFixed(0)} ms`)}`;
    case 'skills.installed':
      return `${session}skills: ${event.skills.join(', ')}`;
    case 'memory.mounted':
      return `${session}memory store ${event.storeId} at ${event.root} (${event.memories} memories)`;
    case 'memory.synced':
      return `${session}memory ${event.storeId}: ${event.uploaded} up, ${event.downloaded} down, ${event.deleted} deleted, ${event.conflicts} conflicts`;
    case 'tool.done':
      return `${session}${event.isError ? red(`[${event.name}]`) : cyan(`[${event.name}]`)} ${oneLine(toolArgument((event.input ?? {}) as Record<string, unknown>), 80)} ${dim(`${event.ms.toFixed(1)} ms`)}`;
    case 'sandbox.suspended':
      return `${session}sandbox ${event.sandboxId} suspended ${dim(`${event.ms.toFixed(0)} ms`)}`;
    case 'sandbox.destroyed':
      return `${session}sandbox ${event.sandboxId} destroyed ${dim(`${event.ms.toFixed(0)} ms`)}`;
    case 'lease.ended':
      return `lease of ${event.workId}: ${event.end} (${event.detail})`;
    case 'work.stopped':
      return `${session}work ${event.workId} stopped (${event.outcome})`;
    case 'work.waiting':
      return `${session}${event.workId} waits: ${event.behind} serves this session`;
    case 'work.redelivered':
      return `${session}${event.workId} was re-delivered: waiting ${(event.waitMs / 1000).toFixed(0)} s for its previous holder to let go`;
    case 'work.handed-over':
      return `${session}work ${event.workId} left to another worker (its lease lapses)`;
    case 'sandbox.kept':
      return `${session}sandbox ${event.sandboxId} kept running: ${event.reason}`;
    case 'fork.refused':
      return red(`${session}fork refused: ${event.message}`);
    case 'sandbox.retrying':
      return `${session}preparing the sandbox failed (${event.message}); attempt ${event.attempt + 1} in ${(event.delayMs / 1000).toFixed(0)} s`;
    case 'error':
      return red(`${session}error: ${event.message}`);
  }
}

import { badRequest } from './errors.js';
import type { SessionRecord } from './sessions.js';

/**
 * Validate a batch of user events as `POST /v1/sessions/{id}/events` does: the whole batch is checked
 * before any event is applied, so one bad event rejects them all. Rejected tool results are recorded on
 * the session (for the report's "each result posted exactly once").
 */
export function validateUserEvents(session: SessionRecord, events: Record<string, unknown>[]): void {
  if (session.status === 'terminated') throw badRequest(`session ${session.id} is terminated`);
  const pendingAnswers = new Set<string>();
  for (const [index, event] of events.entries()) {
    const where = `events[${index}]`;
    switch (event.type) {
      case 'user.message':
        if (!Array.isArray(event.content))
          throw badRequest(`${where}.content: an array of blocks is required`);
        break;
      case 'user.interrupt':
        break;
      case 'user.tool_confirmation':
        if (typeof event.tool_use_id !== 'string' || !session.toolCalls.has(event.tool_use_id)) {
          throw badRequest(
            `${where}.tool_use_id: no agent.tool_use ${String(event.tool_use_id)} in this session`,
          );
        }
        if (event.result !== 'allow' && event.result !== 'deny') {
          throw badRequest(`${where}.result: must be allow or deny`);
        }
        break;
      case 'user.tool_result':
      case 'user.custom_tool_result':
        validateToolResult(session, event, where, pendingAnswers);
        break;
      default:
        throw badRequest(`${where}.type: ${String(event.type)} is not supported by the emulator`);
    }
  }
}

function validateToolResult(
  session: SessionRecord,
  event: Record<string, unknown>,
  where: string,
  pendingAnswers: Set<string>,
): void {
  const custom = event.type === 'user.custom_tool_result';
  const key = custom ? 'custom_tool_use_id' : 'tool_use_id';
  const id = event[key];
  if (typeof id !== 'string') throw badRequest(`${where}.${key}: required`);
  session.answerAttempts.set(id, (session.answerAttempts.get(id) ?? 0) + 1);
  const call = session.toolCalls.get(id);
  const reject = (reason: string) => {
    session.rejectedAnswers.push({ toolUseId: id, status: 400, reason });
    return badRequest(`${where}.${key}: ${reason}`);
  };
  if (!call) throw reject(`no ${custom ? 'agent.custom_tool_use' : 'agent.tool_use'} ${id} in this session`);
  if (call.custom !== custom) {
    throw reject(
      custom
        ? `${id} is an agent.tool_use; answer it with user.tool_result`
        : `${id} is an agent.custom_tool_use; answer it with user.custom_tool_result`,
    );
  }
  if (call.answered || pendingAnswers.has(id)) throw reject(`${id} has already been answered`);
  if (event.content !== undefined && !Array.isArray(event.content)) {
    throw badRequest(`${where}.content: must be an array of blocks`);
  }
  pendingAnswers.add(id);
}

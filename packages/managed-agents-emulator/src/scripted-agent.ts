import { emit, type SessionRecord, type ToolAnswer, type TurnRecord } from './sessions.js';
import {
  checkExpectation,
  contentText,
  type StepResult,
  type ToolUseStep,
  type Transcript,
  type TranscriptStep,
} from './transcript.js';

/** The session metadata key that pins a session to a transcript by name. */
export const TRANSCRIPT_METADATA_KEY = 'emulator.transcript';

class TurnInterrupted extends Error {}

/**
 * The "model": replays transcripts as session events, one at a time, with the statuses the real agent loop
 * emits (running → tool_use → idle/requires_action → result → running → … → message → idle/end_turn).
 */
export class ScriptedAgent {
  readonly transcripts: Transcript[] = [];

  constructor(private readonly stepDelayMs: number) {}

  add(transcript: Transcript): void {
    this.transcripts.push(transcript);
  }

  select(session: SessionRecord, text: string): Transcript | undefined {
    const pinned = session.metadata[TRANSCRIPT_METADATA_KEY];
    if (pinned !== undefined) return this.transcripts.find((t) => t.name === pinned);
    return this.transcripts.find((t) => t.match === undefined || new RegExp(t.match).test(text));
  }

  /** Queue a user message; the agent plays one turn per message, in order. */
  deliver(session: SessionRecord, text: string): void {
    session.inbox.push({ text });
    if (!session.turnRunning) void this.#drain(session);
  }

  /** End the running turn at once (`end_turn`, as an interrupt does) and drop queued messages. */
  interrupt(session: SessionRecord): void {
    session.inbox.length = 0;
    session.abortTurn?.();
  }

  async #drain(session: SessionRecord): Promise<void> {
    session.turnRunning = true;
    try {
      while (session.inbox.length > 0 && session.status !== 'terminated' && !session.deleted) {
        const next = session.inbox.shift()!;
        await this.#playTurn(session, next.text);
      }
    } finally {
      session.turnRunning = false;
      for (const wake of [...session.turnWaiters]) wake();
    }
  }

  async #playTurn(session: SessionRecord, text: string): Promise<void> {
    const transcript = this.select(session, text);
    const turn: TurnRecord = {
      transcript: transcript?.name ?? null,
      message: text,
      steps: [],
      finished: false,
      interrupted: false,
    };
    session.turns.push(turn);
    let interrupted = false;
    const aborted = new Promise<never>((_, reject) => {
      session.abortTurn = () => {
        interrupted = true;
        reject(new TurnInterrupted());
      };
    });
    aborted.catch(() => {});
    const race = <T>(promise: Promise<T>) => Promise.race([promise, aborted]);
    const pause = () => race(new Promise((resolve) => setTimeout(resolve, this.stepDelayMs)));

    this.#setStatus(session, 'running');
    emit(session, { type: 'session.status_running' });
    try {
      if (!transcript) {
        const pinned = session.metadata[TRANSCRIPT_METADATA_KEY];
        turn.error = pinned
          ? `no transcript named ${JSON.stringify(pinned)} (session metadata ${TRANSCRIPT_METADATA_KEY})`
          : `no transcript matches the message ${JSON.stringify(text.slice(0, 200))}`;
        await pause();
        emit(session, {
          type: 'agent.message',
          content: [{ type: 'text', text: `[emulator] ${turn.error}` }],
        });
      } else {
        for (let index = 0; ; index++) {
          const step = this.#stepAt(transcript, index, session, text, turn.steps);
          if (!step) break;
          await pause();
          if (step.type === 'tool_uses') {
            turn.steps.push(...(await this.#playCalls(session, transcript.name, index, step.calls, race)));
          } else {
            turn.steps.push(await this.#playStep(session, transcript.name, index, step, race));
          }
        }
        await pause();
        const tools = turn.steps.filter((s) => s.type === 'tool_use');
        const passed = tools.filter((s) => s.pass).length;
        emit(session, {
          type: 'agent.message',
          content: [
            {
              type: 'text',
              text: `Finished "${transcript.name}": ${passed} of ${tools.length} tool steps passed.`,
            },
          ],
        });
      }
    } catch (error) {
      const partial = (error as { partial?: StepResult }).partial;
      if (partial) turn.steps.push(partial);
      if (!(error instanceof TurnInterrupted)) {
        turn.error = error instanceof Error ? error.message : String(error);
      }
    } finally {
      session.abortTurn = undefined;
    }
    turn.interrupted = interrupted;
    if (session.status === 'terminated' || session.deleted) return;
    this.#setStatus(session, 'idle');
    emit(session, { type: 'session.status_idle', stop_reason: { type: 'end_turn' }, stop_details: null });
    turn.finished = true;
  }

  #stepAt(
    transcript: Transcript,
    index: number,
    session: SessionRecord,
    text: string,
    results: StepResult[],
  ): TranscriptStep | undefined {
    if (Array.isArray(transcript.steps)) return transcript.steps[index];
    return transcript.steps({ sessionId: session.id, text, metadata: session.metadata, results });
  }

  async #playStep(
    session: SessionRecord,
    transcriptName: string,
    index: number,
    step: TranscriptStep,
    race: <T>(promise: Promise<T>) => Promise<T>,
  ): Promise<StepResult> {
    const base = { transcript: transcriptName, index, type: step.type };
    if (step.type === 'thinking') {
      const event = emit(session, { type: 'agent.thinking' });
      return { ...base, eventId: event.id, pass: true };
    }
    if (step.type === 'message') {
      const event = emit(session, { type: 'agent.message', content: [{ type: 'text', text: step.text }] });
      return { ...base, eventId: event.id, content: step.text, pass: true };
    }
    const [result] = await this.#playCalls(session, transcriptName, index, [step as ToolUseStep], race);
    return result!;
  }

  /**
   * Emits each call's `agent.tool_use` (or `agent.custom_tool_use`), then one `requires_action` idle
   * naming them all, and waits for every result.
   */
  async #playCalls(
    session: SessionRecord,
    transcriptName: string,
    index: number,
    steps: ToolUseStep[],
    race: <T>(promise: Promise<T>) => Promise<T>,
  ): Promise<StepResult[]> {
    const calls = steps.map((step) => {
      const custom = step.custom === true;
      const event = custom
        ? emit(session, { type: 'agent.custom_tool_use', name: step.name, input: step.input })
        : emit(session, {
            type: 'agent.tool_use',
            name: step.name,
            input: step.input,
            evaluated_permission: 'allow',
          });
      const answer = new Promise<ToolAnswer>((resolve) => {
        session.toolCalls.set(event.id, {
          id: event.id,
          name: step.name,
          custom,
          answered: false,
          cancelled: false,
          resolve,
        });
      });
      const result: StepResult = {
        transcript: transcriptName,
        index,
        type: 'tool_use',
        name: step.name,
        input: step.input,
        eventId: event.id,
        custom,
        pass: false,
      };
      return { step, event, answer, result };
    });
    this.#setStatus(session, 'idle');
    emit(session, {
      type: 'session.status_idle',
      stop_reason: { type: 'requires_action', event_ids: calls.map((call) => call.event.id) },
      stop_details: null,
    });
    try {
      for (const call of calls) {
        const { content, isError } = await race(call.answer);
        const text = contentText(content);
        const reason = checkExpectation(call.step.expect, text, isError);
        Object.assign(call.result, {
          content: text,
          contentBlocks: content,
          isError,
          pass: reason === undefined,
        });
        if (reason !== undefined) call.result.reason = reason;
      }
    } catch (error) {
      const open = calls.filter((call) => call.result.content === undefined);
      for (const call of open) {
        const record = session.toolCalls.get(call.event.id);
        if (record) record.cancelled = true;
        Object.assign(call.result, {
          unanswered: true,
          reason: 'the turn ended before the tool call was answered',
        });
      }
      // The turn's report keeps every call: answered ones first, then the first unanswered as `partial`.
      const answered = calls.filter((call) => call.result.content !== undefined).map((call) => call.result);
      session.turns.at(-1)?.steps.push(...answered, ...open.slice(1).map((call) => call.result));
      throw Object.assign(error as Error, { partial: open[0]?.result });
    }
    this.#setStatus(session, 'running');
    emit(session, { type: 'session.status_running' });
    return calls.map((call) => call.result);
  }

  #setStatus(session: SessionRecord, status: SessionRecord['status']): void {
    if (session.status !== 'terminated') session.status = status;
  }
}

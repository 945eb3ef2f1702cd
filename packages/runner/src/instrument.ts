import type { BetaRunnableTool } from '@anthropic-ai/sdk/lib/tools/BetaRunnableTool';
import { ToolError } from '@anthropic-ai/sdk/lib/tools/ToolError';

export type ToolHooks = {
  /** The session's own signal: aborted when the runner lets the session go (lease lost, shutdown). */
  signal: AbortSignal;
  /** Ceiling of a non-bash call; bash enforces its own `timeout_ms` (default: this value). */
  timeoutMs: number;
  /**
   * Aborted when the runner drains: a call that arrives after it is not started (nothing runs in the
   * sandbox); it waits for `signal` and ends unposted, for the next worker to run once.
   */
  draining: AbortSignal;
  /** Called with the call's `tool_use_id` as it starts. */
  start: (toolUseId: string | undefined) => void;
  end: (name: string, input: unknown, isError: boolean, ms: number) => void;
};

/**
 * Wraps a tool to count calls in flight (for draining) and report each call with its duration, and to
 * give it the runner's signal in place of the SDK's. `SessionToolRunner` aborts the signal it hands a
 * tool after a fixed 120 s (`TOOL_TIMEOUT_MS`, not an option), which would cut every long `bash` call
 * at 120 s whatever `toolTimeoutMs` or `timeout_ms` say; the SDK awaits the tool regardless, so a
 * tool that honours its own timeout runs as long as it was asked to.
 */
export function instrumentTool(tool: BetaRunnableTool, hooks: ToolHooks): BetaRunnableTool {
  const run = tool.run as (input: unknown, context?: { signal?: AbortSignal }) => ReturnType<typeof tool.run>;
  return {
    ...tool,
    run: async (input: unknown, context?: { signal?: AbortSignal; toolUse?: { id?: string } }) => {
      if (hooks.draining.aborted) {
        await new Promise<void>((resolve) => {
          if (hooks.signal.aborted) resolve();
          else hooks.signal.addEventListener('abort', () => resolve(), { once: true });
        });
        throw new Error('the worker is draining: this call is left to the next worker');
      }
      hooks.start(context?.toolUse?.id);
      const started = performance.now();
      const signal =
        tool.name === 'bash'
          ? hooks.signal
          : AbortSignal.any([hooks.signal, AbortSignal.timeout(hooks.timeoutMs)]);
      let isError = false;
      try {
        return await run(input, { ...context, signal });
      } catch (error) {
        isError = true;
        throw error;
      } finally {
        hooks.end(tool.name, input, isError, performance.now() - started);
      }
    },
  } as BetaRunnableTool;
}

/**
 * The agent toolset's names, each answering with the same error: what a session gets when its sandbox
 * may not be made (a refused fork), so the reason reaches the session as tool results instead of the
 * session waiting for a worker that never answers.
 */
export function refusingTools(message: string): BetaRunnableTool[] {
  return ['bash', 'read', 'write', 'edit', 'glob', 'grep'].map(
    (name) =>
      ({
        type: 'custom',
        name,
        description: `${name} (refused: ${message})`,
        input_schema: { type: 'object', properties: {} },
        parse: (input: unknown) => input,
        run: () => {
          throw new ToolError(`statebox: ${message}`);
        },
      }) as unknown as BetaRunnableTool,
  );
}

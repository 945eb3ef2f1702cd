import type { BetaRunnableTool } from '@anthropic-ai/sdk/lib/tools/BetaRunnableTool';
import type { Sandbox, Statebox } from '@statebox/core';
import type { RunnerEvent } from './events.js';

export type RunnerOptions = {
  environmentId: string;
  /** The environment key (`sk-ant-oat01-…`) from the Console: polls the queue and answers sessions. */
  environmentKey: string;
  /** API base URL. Default: `ANTHROPIC_BASE_URL`, else the SDK's. */
  baseURL?: string;
  /** Where sandboxes live. Default: the configured statebox (config file, `STATEBOX_PROVIDER`, or local). */
  statebox?: Statebox;
  /** Sessions served at once. Default 4. */
  concurrency?: number;
  /**
   * A session idle (its turn ended, nothing outstanding) for this long is released: the runner stops
   * serving it and suspends its sandbox. Its next message queues new work, which resumes the sandbox.
   * Default 60 000 ms.
   */
  idleMs?: number;
  /** What happens to the sandbox of a terminated or archived session. Default `'destroy'`. */
  terminatedSandbox?: 'destroy' | 'suspend' | 'keep';
  /** Sandbox working directory, where skills land (`<workdir>/skills/<name>`). Default `/workspace`. */
  workdir?: string;
  /** How often memory stores are synced back while a session runs. Default 15 000 ms; `null` disables memory. */
  memorySyncIntervalMs?: number | null;
  /**
   * Default per-call timeout of the bash tool (a call's own `timeout_ms` wins), and the ceiling of
   * every other tool call. Default 120 000 ms. Values above 120 s work: the SDK's `SessionToolRunner`
   * aborts its tool signal at a fixed 120 s, so the runner gives tools its own signal instead.
   */
  toolTimeoutMs?: number;
  /**
   * Whether `statebox.fork_from` may name a session of another agent (same environment). Default
   * `false`: a session may fork only a session of its own environment and its own agent.
   */
  forkAcrossAgents?: boolean;
  /** Extra tools (custom tools declared on the agent), built per session. */
  customTools?: (context: { sessionId: string; sandbox: () => Promise<Sandbox> }) => BetaRunnableTool[];
  /** Progress: every claim, sandbox start, tool call, suspend and stop. */
  onEvent?: (event: RunnerEvent) => void;
  /** `Anthropic-Worker-ID`. Default `<hostname>-<pid>`. */
  workerId?: string;
  /**
   * How often the runner sweeps the environment's sandboxes: a terminated or archived session's sandbox
   * gets the `terminatedSandbox` policy, and a running sandbox of an idle session that no work item
   * names (its runner crashed) is suspended. "No work item names it" is read from the environment's
   * work queue, which every replica sees, so a sweep never suspends a sandbox another worker serves.
   * Default 60 000 ms; `null` disables the sweep.
   */
  janitorIntervalMs?: number | null;
  /** Poll tuning (tests use small values). */
  pollBlockMs?: number | null;
  reclaimOlderThanMs?: number | null;
};

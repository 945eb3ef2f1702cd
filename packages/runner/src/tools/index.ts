import { posix } from 'node:path';
import type { BetaRunnableTool } from '@anthropic-ai/sdk/lib/tools/BetaRunnableTool';
import type { Sandbox } from '@statebox/core';
import { BASH_DEFAULT_TIMEOUT_MS, createBashTool, stateName } from './bash.js';
import { createEditTool } from './edit.js';
import { createGlobTool } from './glob.js';
import { createGrepTool } from './grep.js';
import { DEFAULT_MAX_FILE_BYTES, type ToolContext } from './paths.js';
import { createReadTool } from './read.js';
import { createWriteTool } from './write.js';

export type ToolsetOptions = {
  /**
   * The session's sandbox, asked for at every call: the runner may resume or replace it between calls.
   * Every tool runs inside it, through `exec` alone.
   */
  sandbox: Sandbox | (() => Promise<Sandbox>);
  /** Names the persistent bash state (a file under `$HOME/.statebox/bash/` in the sandbox). */
  sessionId: string;
  /** Absolute sandbox path that relative paths start from and the file tools are confined to. Default `/workspace`. */
  workdir?: string;
  /** Other absolute sandbox directories the file tools may reach (skills, `/mnt/memory/<store>`). */
  allowedRoots?: string[];
  /** Directories `write` and `edit` refuse (read-only memory stores). */
  readOnlyRoots?: string[];
  /** Cap for a whole-file `read` and for `edit`. Default 256 KiB, like the reference; `null` for none. */
  maxFileBytes?: number | null;
  /** Variables for `bash`, on top of the sandbox's own. Every `ANTHROPIC_*` key is dropped. */
  env?: Record<string, string>;
  /** `bash` timeout when a call gives no `timeout_ms`. Default 120 000 ms. */
  defaultTimeoutMs?: number;
};

/**
 * The `agent_toolset_20260401` tools, `[bash, read, write, edit, glob, grep]`, run inside a statebox
 * sandbox. Observable behaviour (schemas, texts, caps) follows the SDK's reference implementation
 * (`betaAgentToolset20260401`); `bash` keeps its state in the sandbox, so it outlives suspend, resume
 * and the runner process. Every call is one `exec` (`edit`: two), so the toolset works unchanged on
 * any backend whose image has bash and GNU coreutils, findutils and grep.
 *
 * Where it differs from the reference, on purpose or by necessity:
 * - bash: each call is a new bash restoring the session's variables (exported or not), functions,
 *   `set`/`shopt` options, umask and cwd. Jobs (`jobs`, `wait %1`, `fg`) and traps do not carry over;
 *   background processes do keep running, and `restart` does not kill them.
 * - bash: a timeout or abort kills only that call's process tree and keeps the session's state (the
 *   reference kills the shell and everything it started, and loses its state).
 * - bash and edit, called with a `tool_use` id in the run context (as `SessionToolRunner` does): each
 *   call takes effect once in the sandbox however often it is asked (journal.ts). An abort then stops
 *   waiting for a bash command but leaves it running, to record its answer for the next attempt. A syntax error is an
 *   error result; the reference's shell dies of it. `exit` and `set -e` failures end the session as in
 *   the reference (`bash: bash session terminated`, next call starts afresh).
 * - bash: `env` is added to the sandbox's environment; the reference's replaces the host's. After the
 *   first call the saved state wins, as in one long-lived shell. `timeout_ms: 0` means the default.
 * - bash and grep cap output in bytes, the reference in UTF-16 units. Line numbers in bash's own
 *   messages differ (the reference's count from its shell's start).
 * - glob walks with `find` and matches with `path.matchesGlob`, the matcher of the reference's
 *   `fs.glob`. It follows no symlinked directory (the reference does when the pattern names one) and
 *   always prunes `.git` and `node_modules` (the reference's `fs.glob` enters `.git` for a pattern
 *   whose first segment is `.*`).
 * - grep without `rg` in the sandbox runs `grep -rnHI -P` (PCRE; `-E` without PCRE support), where the
 *   reference walks with a JavaScript RegExp: the syntax differs at the edges (Unicode classes, flags),
 *   lines over 2000 characters are not skipped, results come in `grep`'s order.
 * - write: no fsync before the rename.
 * - parse: input of the wrong type is a `ToolError` naming the field; the reference passes it to `run`.
 * - read: a malformed `view_range` is reported before the path policy runs, not after.
 */
export function createToolset(options: ToolsetOptions): BetaRunnableTool[] {
  const given = options.sandbox;
  const sandbox = typeof given === 'function' ? given : () => Promise.resolve(given);
  const workdir = posix.resolve(options.workdir ?? '/workspace');
  const context: ToolContext = {
    sandbox,
    workdir,
    allowedRoots: (options.allowedRoots ?? []).map((root) => posix.resolve(workdir, root)),
    readOnlyRoots: (options.readOnlyRoots ?? []).map((root) => posix.resolve(workdir, root)),
    maxFileBytes: options.maxFileBytes === undefined ? DEFAULT_MAX_FILE_BYTES : options.maxFileBytes,
    session: stateName(options.sessionId),
  };
  return [
    createBashTool({
      sandbox,
      sessionId: options.sessionId,
      workdir,
      env: options.env ?? {},
      defaultTimeoutMs: options.defaultTimeoutMs ?? BASH_DEFAULT_TIMEOUT_MS,
    }),
    createReadTool(context),
    createWriteTool(context),
    createEditTool(context),
    createGlobTool(context),
    createGrepTool(context),
  ];
}

export { BASH_OUTPUT_LIMIT, copyBashState, scrubEnvironment } from './bash.js';
export { JOURNAL_KEEP, PRUNE_EVERY } from './journal.js';

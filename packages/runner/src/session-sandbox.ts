import type Anthropic from '@anthropic-ai/sdk';
import { type Sandbox, type Statebox, TransientError } from '@statebox/core';
import { delay } from './delay.js';
import { describeError, type RunnerEvent } from './events.js';

/** Labels that tie a sandbox to a Managed Agents session, so any runner replica can find it. */
export const SESSION_LABEL = 'statebox.session';
export const ENVIRONMENT_LABEL = 'statebox.environment';
export const MANAGED_BY_LABEL = 'statebox.managed-by';

/** Session metadata key: start this session from a copy of another session's sandbox. */
export const FORK_FROM_METADATA = 'statebox.fork_from';

export type SandboxAcquisition = {
  sandbox: Sandbox;
  how: 'resumed' | 'reused' | 'created' | 'forked';
  /** For `forked`: the session whose sandbox was copied. */
  from?: string;
  ms: number;
};

/** A `statebox.fork_from` that may not be honoured; the message says why and what to do. */
export class ForkRefusedError extends Error {
  override readonly name = 'ForkRefusedError';
}

/**
 * Finds the sandbox of a session through the provider's labels, with no local database, so runner
 * restarts and replicas on other machines agree on it.
 */
export async function findSessionSandbox(
  statebox: Statebox,
  sessionId: string,
  environmentId?: string,
): Promise<Sandbox | undefined> {
  const found = await statebox.list({
    labels: { [SESSION_LABEL]: sessionId, ...(environmentId && { [ENVIRONMENT_LABEL]: environmentId }) },
  });
  // Two sandboxes for one session can only come from a crash between create and its first use; the
  // oldest one is the one that may hold work.
  return found.sort((a, b) => a.info.createdAt.localeCompare(b.info.createdAt))[0];
}

/**
 * The sandbox a work item for `sessionId` should run in: the session's own (resumed if suspended),
 * else a fork of the session named in `statebox.fork_from` (running or suspended), else a new one.
 *
 * A fork is allowed only from a session of the same environment and, unless `forkAcrossAgents`, of the
 * same agent: the parent is looked up with the environment key (which the API scopes to its
 * environment) and its sandbox by both labels, so metadata cannot reach another environment's state.
 * A refusal is a `ForkRefusedError` whose message the session is shown.
 */
export async function acquireSessionSandbox(
  statebox: Statebox,
  client: Anthropic,
  session: {
    id: string;
    environmentId: string;
    agentId: string | undefined;
    metadata: Record<string, string>;
    forkAcrossAgents: boolean;
  },
): Promise<SandboxAcquisition> {
  const started = performance.now();
  const labels = {
    [SESSION_LABEL]: session.id,
    [ENVIRONMENT_LABEL]: session.environmentId,
    [MANAGED_BY_LABEL]: 'statebox-runner',
  };
  const existing = await findSessionSandbox(statebox, session.id, session.environmentId);
  if (existing) {
    if (existing.status === 'suspended') {
      await existing.resume();
      return { sandbox: existing, how: 'resumed', ms: performance.now() - started };
    }
    return { sandbox: existing, how: 'reused', ms: performance.now() - started };
  }
  const parentSession = session.metadata[FORK_FROM_METADATA];
  if (parentSession) {
    await authorizeFork(client, session, parentSession);
    const parent = await findSessionSandbox(statebox, parentSession, session.environmentId);
    if (!parent) {
      throw new ForkRefusedError(
        `cannot fork session ${parentSession}: it has no sandbox yet (it never ran a tool on this environment). Send it a message first, or create this session without ${FORK_FROM_METADATA}.`,
      );
    }
    const child = await parent.fork({ labels });
    return { sandbox: child, how: 'forked', from: parentSession, ms: performance.now() - started };
  }
  const sandbox = await statebox.create({ labels });
  return { sandbox, how: 'created', ms: performance.now() - started };
}

/** Waits before the 2nd, 3rd and 4th attempt at preparing a session's sandbox. */
export const ACQUIRE_RETRY_DELAYS_MS = [1_000, 3_000, 9_000] as const;

/**
 * `acquireSessionSandbox`, tried again after a `TransientError` (a busy or briefly unreachable
 * backend) up to `ACQUIRE_RETRY_DELAYS_MS.length` times, so a blip does not cost the session its
 * turn. Other errors, and the last transient one, are thrown; so is anything once `signal` aborts.
 */
export async function acquireWithRetry(
  acquire: () => Promise<SandboxAcquisition>,
  sessionId: string,
  signal: AbortSignal,
  emit: (event: RunnerEvent) => void,
  delaysMs: readonly number[] = ACQUIRE_RETRY_DELAYS_MS,
): Promise<SandboxAcquisition> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await acquire();
    } catch (error) {
      const delayMs = delaysMs[attempt - 1];
      if (!TransientError.isInstance(error) || delayMs === undefined || signal.aborted) throw error;
      emit({ type: 'sandbox.retrying', sessionId, attempt, delayMs, message: describeError(error) });
      await delay(delayMs, signal);
      if (signal.aborted) throw error;
    }
  }
}

async function authorizeFork(
  client: Anthropic,
  session: { id: string; environmentId: string; agentId: string | undefined; forkAcrossAgents: boolean },
  parentId: string,
): Promise<void> {
  if (parentId === session.id) {
    throw new ForkRefusedError(`session ${session.id} names itself in ${FORK_FROM_METADATA}`);
  }
  const parent = await client.beta.sessions.retrieve(parentId).catch((error: { status?: number }) => {
    if (error.status === 403 || error.status === 404) return undefined;
    throw error;
  });
  if (!parent || parent.environment_id !== session.environmentId) {
    throw new ForkRefusedError(
      `cannot fork session ${parentId}: no such session in environment ${session.environmentId} (a session may fork only a session of its own environment)`,
    );
  }
  const parentAgent = (parent as { agent?: { id?: string } }).agent?.id;
  if (!session.forkAcrossAgents && parentAgent !== session.agentId) {
    throw new ForkRefusedError(
      `cannot fork session ${parentId}: it runs agent ${parentAgent}, this session runs ${session.agentId} (start the worker with forkAcrossAgents / --fork-across-agents to allow it)`,
    );
  }
}

/**
 * After a session's work ends: suspend its sandbox, or apply the terminated-session policy (`destroy`,
 * `suspend` or `keep`). A failure is reported as an `error` event, never thrown.
 */
export async function releaseSandbox(
  sandbox: Sandbox,
  sessionId: string,
  outcome: 'idle' | 'terminated' | 'shutdown',
  terminatedPolicy: 'destroy' | 'suspend' | 'keep',
  emit: (event: RunnerEvent) => void,
): Promise<void> {
  const started = performance.now();
  try {
    if (outcome === 'terminated' && terminatedPolicy === 'destroy') {
      await sandbox.destroy();
      emit({ type: 'sandbox.destroyed', sessionId, sandboxId: sandbox.id, ms: performance.now() - started });
      return;
    }
    if (outcome === 'terminated' && terminatedPolicy === 'keep') return;
    await sandbox.suspend();
    emit({ type: 'sandbox.suspended', sessionId, sandboxId: sandbox.id, ms: performance.now() - started });
  } catch (error) {
    emit({ type: 'error', sessionId, message: `releasing sandbox ${sandbox.id}: ${describeError(error)}` });
  }
}

/**
 * The session's sandbox as the tools ask for it at every call. Its status is read from the provider
 * each time, so a sandbox suspended meanwhile (a sweep, or a worker that finished with the session as
 * this one claimed it) is resumed rather than failing the call.
 */
export function sessionSandboxHandle(
  sandbox: Sandbox,
  sessionId: string,
  emit: (event: RunnerEvent) => void,
): () => Promise<Sandbox> {
  return async () => {
    const info = await sandbox.refresh();
    if (info.status === 'suspended') {
      const started = performance.now();
      await sandbox.resume();
      emit({
        type: 'sandbox.ready',
        sessionId,
        sandboxId: sandbox.id,
        how: 'resumed',
        ms: performance.now() - started,
      });
    }
    return sandbox;
  };
}

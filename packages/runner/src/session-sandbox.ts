import { type Sandbox, SandboxNotFoundError, type Statebox } from '@statebox/core';
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

/**
 * Finds the sandbox of a session through the provider's labels, with no local database, so runner
 * restarts and replicas on other machines agree on it.
 */
export async function findSessionSandbox(
  statebox: Statebox,
  sessionId: string,
): Promise<Sandbox | undefined> {
  const found = await statebox.list({ labels: { [SESSION_LABEL]: sessionId } });
  // Two sandboxes for one session can only come from a crash between create and its first use; the
  // oldest one is the one that may hold work.
  return found.sort((a, b) => a.info.createdAt.localeCompare(b.info.createdAt))[0];
}

/**
 * The sandbox a work item for `sessionId` should run in: the session's own (resumed if suspended),
 * else a fork of the session named in `statebox.fork_from` (running or suspended), else a new one.
 */
export async function acquireSessionSandbox(
  statebox: Statebox,
  session: { id: string; environmentId: string; metadata: Record<string, string> },
): Promise<SandboxAcquisition> {
  const started = performance.now();
  const labels = {
    [SESSION_LABEL]: session.id,
    [ENVIRONMENT_LABEL]: session.environmentId,
    [MANAGED_BY_LABEL]: 'statebox-runner',
  };
  const existing = await findSessionSandbox(statebox, session.id);
  if (existing) {
    if (existing.status === 'suspended') {
      await existing.resume();
      return { sandbox: existing, how: 'resumed', ms: performance.now() - started };
    }
    return { sandbox: existing, how: 'reused', ms: performance.now() - started };
  }
  const parentSession = session.metadata[FORK_FROM_METADATA];
  if (parentSession) {
    const parent = await findSessionSandbox(statebox, parentSession);
    if (!parent) {
      throw new SandboxNotFoundError(`(sandbox of session ${parentSession})`, {
        operation: `fork for session ${session.id}`,
      });
    }
    const child = await parent.fork({ labels });
    return { sandbox: child, how: 'forked', from: parentSession, ms: performance.now() - started };
  }
  const sandbox = await statebox.create({ labels });
  return { sandbox, how: 'created', ms: performance.now() - started };
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

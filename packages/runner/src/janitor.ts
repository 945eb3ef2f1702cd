import type Anthropic from '@anthropic-ai/sdk';
import type { Sandbox, Statebox } from '@statebox/core';
import { ENVIRONMENT_LABEL, SESSION_LABEL } from './session-sandbox.js';
import { liveWorkBySession, otherLiveWork } from './session-work.js';

/**
 * One sweep over an environment's sandboxes: a terminated or archived session's sandbox gets the
 * terminated policy; a running sandbox of an idle session that no live work item names (its worker
 * died) is suspended. Whether a worker serves a session is read from the work queue, which every
 * replica shares, and read again just before a suspend, so a sweep on one worker never suspends the
 * sandbox a session on another worker is using.
 */
export async function sweepEnvironment(options: {
  client: Anthropic;
  statebox: Statebox;
  environmentId: string;
  release: (sandbox: Sandbox, sessionId: string, outcome: 'idle' | 'terminated') => Promise<void>;
}): Promise<void> {
  const { client, statebox, environmentId } = options;
  const sandboxes = await statebox.list({ labels: { [ENVIRONMENT_LABEL]: environmentId } });
  const live = await liveWorkBySession(client, environmentId);
  for (const sandbox of sandboxes) {
    const sessionId = sandbox.labels[SESSION_LABEL];
    if (!sessionId || live.has(sessionId)) continue;
    const session = await client.beta.sessions
      .retrieve(sessionId)
      .catch((error: { status?: number }) =>
        error.status === 404 ? ({ status: 'terminated' } as const) : undefined,
      );
    if (!session) continue;
    if (session.status === 'terminated') {
      await options.release(sandbox, sessionId, 'terminated');
    } else if (sandbox.status === 'running' && session.status === 'idle') {
      if (await otherLiveWork(client, environmentId, sessionId)) continue;
      await options.release(sandbox, sessionId, 'idle');
    }
  }
}

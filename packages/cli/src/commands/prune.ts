import Anthropic from '@anthropic-ai/sdk';
import type { PruneItem, SandboxProvider } from '@statebox/core';
import { SESSION_LABEL } from '@statebox/runner';
import {
  closeProvider,
  formatBytes,
  jsonOption,
  loadProvider,
  parseVerb,
  providerOption,
  table,
  writeJson,
} from '../operate/common.js';

export const pruneUsage = 'statebox prune [--dry-run] [--json] [--provider NAME]';

/**
 * Sandboxes the runner made for a Managed Agents session (label `statebox.session`) whose session has
 * ended: terminated, archived or deleted. Asked of the API only when `ANTHROPIC_API_KEY` is set; a
 * session that cannot be looked up for another reason keeps its sandbox (not found is not transient).
 */
async function endedSessionSandboxes(
  provider: SandboxProvider,
  dryRun: boolean,
  notes: string[],
): Promise<PruneItem[]> {
  // Without a key there is nothing to ask; and listing is not free of effects (the local provider's
  // list() clears what dead creates left), which a dry run must not cause unasked.
  if (!process.env.ANTHROPIC_API_KEY) {
    notes.push(
      'sandboxes of Managed Agents sessions were not checked: set ANTHROPIC_API_KEY (and ANTHROPIC_BASE_URL) to prune those whose session ended.',
    );
    return [];
  }
  const sandboxes = (await provider.list()).filter((info) => info.labels[SESSION_LABEL]);
  if (sandboxes.length === 0) return [];
  const client = new Anthropic({
    apiKey: process.env.ANTHROPIC_API_KEY,
    ...(process.env.ANTHROPIC_BASE_URL && { baseURL: process.env.ANTHROPIC_BASE_URL }),
    maxRetries: 2,
  });
  const ended = new Map<string, string | undefined>();
  for (const sessionId of new Set(sandboxes.map((info) => info.labels[SESSION_LABEL]!))) {
    try {
      const session = await client.beta.sessions.retrieve(sessionId);
      if (session.archived_at) ended.set(sessionId, 'archived');
      else if (session.status === 'terminated') ended.set(sessionId, 'terminated');
    } catch (error) {
      if ((error as { status?: number }).status === 404) ended.set(sessionId, 'deleted');
      else
        notes.push(
          `session ${sessionId} could not be looked up (${(error as Error).message}); its sandbox is kept.`,
        );
    }
  }
  const items: PruneItem[] = [];
  for (const info of sandboxes) {
    const sessionId = info.labels[SESSION_LABEL]!;
    const why = ended.get(sessionId);
    if (!why) continue;
    const usage = provider.usage ? await provider.usage(info.id).catch(() => undefined) : undefined;
    let removed = false;
    if (!dryRun) {
      await provider.destroy(info.id);
      removed = true;
    }
    items.push({
      kind: 'sandbox',
      name: info.id,
      bytes: usage?.ownBytes ?? 0,
      reason: `session ${sessionId} ${why}`,
      removed,
    });
  }
  return items;
}

export async function pruneCommand(argv: string[]): Promise<number> {
  const { values } = parseVerb(
    'prune',
    argv,
    { ...providerOption, ...jsonOption, 'dry-run': { type: 'boolean', default: false } },
    pruneUsage,
  );
  if (values.help) {
    process.stdout.write(
      `${pruneUsage}\n  Removes what crashed processes left (orphaned layers, stale locks, half-made sandboxes) and the sandboxes of Managed Agents sessions that ended.\n`,
    );
    return 0;
  }
  const dryRun = values['dry-run'] === true;
  const provider = await loadProvider(values.provider as string | undefined);
  try {
    const notes: string[] = [];
    const items: PruneItem[] = [];
    // The backend first: listing sandboxes (for their sessions) may itself clear some leftovers, as
    // the local provider's list() does, which would then go uncounted. Destroying a session's sandbox
    // drops the layers only it used as part of the destroy.
    if (provider.prune) items.push(...(await provider.prune({ dryRun })).items);
    else
      notes.push(
        `provider '${provider.name}' keeps no state of its own to prune; only session sandboxes were checked.`,
      );
    items.push(...(await endedSessionSandboxes(provider, dryRun, notes)));
    const counted = dryRun ? items : items.filter((item) => item.removed);
    const freedBytes = counted.reduce((sum, item) => sum + item.bytes, 0);
    if (values.json) {
      writeJson({ provider: provider.name, dryRun, items, freedBytes, notes });
      return 0;
    }
    for (const note of notes) process.stderr.write(`note: ${note}\n`);
    if (items.length === 0) {
      process.stdout.write('Nothing to prune.\n');
      return 0;
    }
    const rows = items.map((item) => [
      item.kind,
      item.name,
      item.kind === 'lock' ? '-' : formatBytes(item.bytes),
      dryRun ? 'would remove' : item.removed ? 'removed' : 'kept (in use again)',
      item.reason,
    ]);
    process.stdout.write(table(['KIND', 'NAME', 'SIZE', 'ACTION', 'REASON'], rows));
    process.stdout.write(
      dryRun
        ? `Would reclaim ${formatBytes(freedBytes)} (dry run: nothing was removed; run statebox prune to remove).\n`
        : `Total reclaimed space: ${formatBytes(freedBytes)}\n`,
    );
    return 0;
  } finally {
    await closeProvider(provider);
  }
}

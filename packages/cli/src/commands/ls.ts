import type { SandboxInfo, SandboxProvider, SandboxUsage } from '@statebox/core';
import {
  closeProvider,
  formatAge,
  formatBytes,
  jsonOption,
  loadProvider,
  parseLabels,
  parseVerb,
  providerOption,
  table,
  writeJson,
} from '../operate/common.js';

export const lsUsage = 'statebox ls [--label KEY=VALUE]... [--json] [--provider NAME]';

/** Disk of each sandbox where the backend can say; a few at a time (each is a walk of its layers). */
export async function usages(
  provider: SandboxProvider,
  infos: SandboxInfo[],
): Promise<Map<string, SandboxUsage | undefined>> {
  const found = new Map<string, SandboxUsage | undefined>();
  if (!provider.usage) return found;
  const queue = [...infos];
  const worker = async () => {
    for (let info = queue.shift(); info; info = queue.shift()) {
      // A sandbox destroyed between list and usage simply has no size.
      found.set(info.id, await provider.usage!(info.id).catch(() => undefined));
    }
  };
  await Promise.all(Array.from({ length: 4 }, worker));
  return found;
}

export function labelText(labels: Readonly<Record<string, string>>): string {
  return Object.entries(labels)
    .map(([key, value]) => `${key}=${value}`)
    .join(',');
}

export async function lsCommand(argv: string[]): Promise<number> {
  const { values } = parseVerb(
    'ls',
    argv,
    { ...providerOption, ...jsonOption, label: { type: 'string', multiple: true } },
    lsUsage,
  );
  if (values.help) {
    process.stdout.write(
      `${lsUsage}\n  The sandboxes of the provider: id, status, age, disk held, fork parent and labels.\n`,
    );
    return 0;
  }
  const labels = parseLabels(values.label as string[] | undefined);
  const provider = await loadProvider(values.provider as string | undefined);
  try {
    const infos = await provider.list({ labels });
    const disk = await usages(provider, infos);
    if (values.json) {
      writeJson(infos.map((info) => ({ ...info, disk: disk.get(info.id) ?? null })));
      return 0;
    }
    const rows = infos.map((info) => {
      const usage = disk.get(info.id);
      return [
        info.id,
        info.status,
        formatAge(info.createdAt),
        usage
          ? `${formatBytes(usage.ownBytes)}${usage.sharedBytes ? ` (+${formatBytes(usage.sharedBytes)} shared)` : ''}`
          : '-',
        info.parentId ?? '-',
        labelText(info.labels) || '-',
      ];
    });
    process.stdout.write(table(['SANDBOX ID', 'STATUS', 'AGE', 'DISK', 'PARENT', 'LABELS'], rows));
    return 0;
  } finally {
    await closeProvider(provider);
  }
}

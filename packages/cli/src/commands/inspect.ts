import { type SandboxInfo, SandboxNotFoundError, type SandboxProvider } from '@statebox/core';
import {
  closeProvider,
  formatAge,
  formatBytes,
  jsonOption,
  loadProvider,
  parseVerb,
  providerOption,
  UsageError,
  writeJson,
} from '../operate/common.js';
import { labelText } from './ls.js';

export const inspectUsage = 'statebox inspect ID... [--json] [--provider NAME]';

type TreeNode = { id: string; status: string; children: TreeNode[] };

/** The sandbox's ancestors (nearest first) as far as they still exist, and its descendants as a tree. */
async function forkTree(provider: SandboxProvider, info: SandboxInfo, all: SandboxInfo[]) {
  const ancestors: { id: string; status: string | 'destroyed' }[] = [];
  for (let parentId = info.parentId; parentId && ancestors.length < 1000; ) {
    const parent = await provider.get(parentId).catch((error: unknown) => {
      if (SandboxNotFoundError.isInstance(error)) return undefined;
      throw error;
    });
    ancestors.push({ id: parentId, status: parent?.status ?? 'destroyed' });
    parentId = parent?.parentId;
  }
  const children = (id: string, depth: number): TreeNode[] =>
    depth > 1000
      ? []
      : all
          .filter((other) => other.parentId === id)
          .map((other) => ({ id: other.id, status: other.status, children: children(other.id, depth + 1) }));
  return { ancestors, children: children(info.id, 0) };
}

function treeLines(nodes: TreeNode[], indent: string): string[] {
  return nodes.flatMap((node, index) => {
    const last = index === nodes.length - 1;
    return [
      `${indent}${last ? '└─' : '├─'} ${node.id} (${node.status})`,
      ...treeLines(node.children, `${indent}${last ? '   ' : '│  '}`),
    ];
  });
}

export async function inspectCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseVerb(
    'inspect',
    argv,
    { ...providerOption, ...jsonOption },
    inspectUsage,
  );
  if (values.help) {
    process.stdout.write(
      `${inspectUsage}\n  Everything known of a sandbox: status, labels, disk, its fork tree and its backend's capabilities.\n`,
    );
    return 0;
  }
  if (positionals.length === 0) throw new UsageError(`inspect needs a sandbox id: ${inspectUsage}`);
  const provider = await loadProvider(values.provider as string | undefined);
  try {
    const all = await provider.list();
    const reports = [];
    for (const id of positionals) {
      const info = await provider.get(id);
      const [tree, disk] = await Promise.all([
        forkTree(provider, info, all),
        provider.usage ? provider.usage(id).catch(() => undefined) : undefined,
      ]);
      reports.push({ ...info, disk: disk ?? null, ...tree, capabilities: provider.capabilities });
    }
    if (values.json) {
      writeJson(reports);
      return 0;
    }
    for (const report of reports) {
      const lines = [
        `Sandbox:      ${report.id}`,
        `Provider:     ${report.provider}`,
        `Status:       ${report.status}`,
        `Created:      ${report.createdAt} (${formatAge(report.createdAt)} ago)`,
        `Workdir:      ${report.workdir}`,
        `Labels:       ${labelText(report.labels) || '-'}`,
        `Disk:         ${report.disk ? `${formatBytes(report.disk.ownBytes)} own, ${formatBytes(report.disk.sharedBytes)} in layers shared with forks` : 'not reported by this backend'}`,
        `Parent:       ${report.parentId ?? '-'}`,
        'Fork tree:',
        ...[...report.ancestors]
          .reverse()
          .map((node, depth) => `  ${'   '.repeat(depth)}${depth ? '└─ ' : ''}${node.id} (${node.status})`),
        `  ${'   '.repeat(report.ancestors.length)}${report.ancestors.length ? '└─ ' : ''}${report.id} (${report.status}) <- this sandbox`,
        ...treeLines(
          report.children,
          `  ${'   '.repeat(report.ancestors.length)}${report.ancestors.length ? '   ' : ''}`,
        ),
        'Capabilities:',
        ...Object.entries(report.capabilities).map(
          ([key, value]) => `  ${`${key}:`.padEnd(16)}${String(value)}`,
        ),
        `Operator:     shell ${provider.terminal ? 'yes' : 'no'}, disk usage ${provider.usage ? 'yes' : 'no'}, prune ${provider.prune ? 'yes' : 'no'}`,
      ];
      process.stdout.write(`${lines.join('\n')}\n`);
    }
    return 0;
  } finally {
    await closeProvider(provider);
  }
}

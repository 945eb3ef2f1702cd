import { DEFAULT_WORKDIR, type SandboxInfo } from '@statebox/core';

/** Label keys. Everything statebox knows about a sandbox is in these, on the container and its volume. */
export const LABEL = {
  provider: 'statebox.provider',
  id: 'statebox.id',
  createdAt: 'statebox.created-at',
  parent: 'statebox.parent',
  userPrefix: 'statebox.label.',
  /**
   * The sandbox's own labels as JSON. The per-key labels above serve the daemon's label filter, but a
   * commit copies a container's labels into the image and a child container inherits them; this one is
   * always set at create, so it says which of them are the sandbox's own.
   */
  userLabels: 'statebox.labels',
  /** On volumes: the layer stack, top first (upper, then lowers), comma-separated. */
  layers: 'statebox.layers',
  /**
   * On the replacement a fork makes for a running source: the replacement is started right after the
   * fork returns, and until then it counts as running (exec starts it if this process did not).
   */
  autostart: 'statebox.autostart',
  /** On committed images, so that destroy deletes only what statebox made. */
  committed: 'statebox.committed',
  /** On committed images: the fork that made it (its journal's token). */
  fork: 'statebox.fork',
} as const;

export const PROVIDER = 'docker';
export const SANDBOX_ID = /^sb-[0-9a-f]{16}$/;

export type ContainerJson = {
  Id: string;
  Name: string;
  Created: string;
  Image: string;
  State: { Running: boolean; Paused: boolean; Status: string; StartedAt?: string; Pid?: number };
  Config: { Env: string[] | null; Labels: Record<string, string> | null; User: string };
  HostConfig: {
    NetworkMode: string;
    PidsLimit?: number | null;
    Memory?: number;
    MemorySwap?: number;
    ShmSize?: number;
    NanoCpus?: number;
    StorageOpt?: Record<string, string> | null;
  };
  Mounts: { Type: string; Name?: string; Destination: string }[];
  GraphDriver?: { Name: string; Data?: { UpperDir?: string } };
};

export type ContainerSummary = {
  Id: string;
  Names: string[];
  Labels: Record<string, string>;
  State: string;
  Created: number;
};

export type VolumeJson = { Name: string; Labels: Record<string, string> | null };

export function containerName(sandboxId: string): string {
  return `statebox-${sandboxId}`;
}

export function userLabels(labels: Record<string, string> | undefined): Record<string, string> {
  return {
    ...Object.fromEntries(
      Object.entries(labels ?? {}).map(([key, value]) => [`${LABEL.userPrefix}${key}`, value]),
    ),
    [LABEL.userLabels]: JSON.stringify(labels ?? {}),
  };
}

export function ownLabels(labels: Record<string, string>): Record<string, string> {
  try {
    return JSON.parse(labels[LABEL.userLabels] ?? '{}') as Record<string, string>;
  } catch {
    return {};
  }
}

export function pickStateboxLabels(labels: Record<string, string>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(labels).filter(
      ([key]) => key.startsWith('statebox.') && key !== LABEL.committed && key !== LABEL.fork,
    ),
  );
}

export function parseLayers(labels: Record<string, string> | null): string[] {
  return (labels?.[LABEL.layers] ?? '').split(',').filter(Boolean);
}

export function workspaceVolume(container: ContainerJson): string | undefined {
  return container.Mounts.find((mount) => mount.Destination === DEFAULT_WORKDIR && mount.Type === 'volume')
    ?.Name;
}

/** A fork's replacement of a running source that was created but has not been started yet. */
export function isPendingStart(container: ContainerJson): boolean {
  return container.State.Status === 'created' && container.Config.Labels?.[LABEL.autostart] === 'true';
}

export function toInfo(container: ContainerJson): SandboxInfo {
  const running = (container.State.Running && !container.State.Paused) || isPendingStart(container);
  return infoFromLabels(
    container.Config.Labels ?? {},
    running ? 'running' : 'suspended',
    Date.parse(container.Created) / 1000,
  );
}

export function infoFromLabels(
  labels: Record<string, string>,
  status: 'running' | 'suspended',
  created: number,
): SandboxInfo {
  return {
    id: labels[LABEL.id]!,
    provider: PROVIDER,
    status,
    labels: ownLabels(labels),
    createdAt: labels[LABEL.createdAt] ?? new Date(created * 1000).toISOString(),
    parentId: labels[LABEL.parent],
    workdir: DEFAULT_WORKDIR,
  };
}

/** Go's `os.FileMode` bits, as Docker's archive stat header carries them. */
const GO_MODE = {
  dir: 0x80000000,
  symlink: 1 << 27,
  device: 1 << 26,
  namedPipe: 1 << 25,
  socket: 1 << 24,
  setuid: 1 << 23,
  setgid: 1 << 22,
  charDevice: 1 << 21,
  sticky: 1 << 20,
  irregular: 1 << 19,
} as const;

export type FileKind = 'file' | 'directory' | 'symlink' | 'fifo' | 'socket' | 'device' | 'other';

/** Go's `os.FileMode` to a file kind and Unix permission bits. */
export function fromGoFileMode(mode: number): { kind: FileKind; permissions: number } {
  const bits = mode >>> 0;
  let permissions = bits & 0o777;
  if (bits & GO_MODE.setuid) permissions |= 0o4000;
  if (bits & GO_MODE.setgid) permissions |= 0o2000;
  if (bits & GO_MODE.sticky) permissions |= 0o1000;
  const kind: FileKind =
    bits & GO_MODE.dir
      ? 'directory'
      : bits & GO_MODE.symlink
        ? 'symlink'
        : bits & GO_MODE.namedPipe
          ? 'fifo'
          : bits & GO_MODE.socket
            ? 'socket'
            : bits & (GO_MODE.device | GO_MODE.charDevice)
              ? 'device'
              : bits & GO_MODE.irregular
                ? 'other'
                : 'file';
  return { kind, permissions };
}

export function splitImage(image: string): [string, string] {
  const at = image.indexOf('@');
  if (at !== -1) return [image.slice(0, at), image.slice(at + 1)];
  const colon = image.lastIndexOf(':');
  if (colon > image.lastIndexOf('/')) return [image.slice(0, colon), image.slice(colon + 1)];
  return [image, 'latest'];
}

import { randomBytes } from 'node:crypto';
import type { EventStream } from '@statebox/emulator-kit';
import { badRequest, conflict, notFound } from './errors.js';

/** `SandboxStatus` of tensorlake@0.5.89's d.ts. */
export type SandboxStatus =
  | 'pending'
  | 'running'
  | 'snapshotting'
  | 'suspending'
  | 'suspended'
  | 'terminated'
  | 'timeout';

export type SandboxRecord = {
  readonly id: string;
  readonly namespace: string;
  name: string | null;
  status: SandboxStatus;
  readonly createdAt: Date;
  terminatedAt: Date | null;
  terminationReason: string | null;
  readonly image: string;
  readonly resources: { cpus: number; memory_mb: number; ephemeral_disk_mb: number };
  readonly timeoutSecs: number;
  /** Open data-plane streams (process output), cut when the sandbox stops running as a VM snapshot would. */
  readonly streams: Set<EventStream>;
  /** Serialises transitions (suspend, resume, copy, delete) of this sandbox. */
  transition: Promise<void>;
};

/** Sandbox names: the emulator's rule. Tensorlake documents no rule; see the README (UNCONFIRMED). */
export const NAME_PATTERN = /^[a-z0-9][a-z0-9-]*$/;

/** The emulator's sandboxes and names, one namespace map each. The only module holding its state. */
export class SandboxTable {
  readonly #records = new Map<string, SandboxRecord>();
  readonly maxNameLength: number;

  constructor(maxNameLength: number) {
    this.maxNameLength = maxNameLength;
  }

  newId(): string {
    // Tensorlake ids are opaque lowercase strings; 20 base-36 characters here.
    let id = '';
    while (id.length < 20)
      id += randomBytes(16)
        .toString('base64')
        .replace(/[^a-z0-9]/g, '');
    return id.slice(0, 20);
  }

  add(record: SandboxRecord): void {
    this.#records.set(record.id, record);
  }

  /** A sandbox of `namespace`, terminated ones included (the service keeps them readable for a while). */
  find(namespace: string, id: string): SandboxRecord | undefined {
    const record = this.#records.get(id);
    return record && record.namespace === namespace ? record : undefined;
  }

  require(namespace: string, id: string): SandboxRecord {
    const record = this.find(namespace, id);
    if (!record) throw notFound(`sandbox ${id}`);
    return record;
  }

  /** The live (not terminated) sandboxes of a namespace. */
  live(namespace: string): SandboxRecord[] {
    return [...this.#records.values()].filter(
      (record) => record.namespace === namespace && !isGone(record.status),
    );
  }

  /** Any sandbox by id, whatever its namespace (the data plane addresses sandboxes by id alone). */
  byId(id: string): SandboxRecord | undefined {
    return this.#records.get(id);
  }

  all(): SandboxRecord[] {
    return [...this.#records.values()];
  }

  /** Throws the documented refusals: a malformed name, or one a live sandbox of the namespace holds. */
  checkName(namespace: string, name: unknown, self?: string): string {
    if (typeof name !== 'string' || !NAME_PATTERN.test(name) || name.length > this.maxNameLength) {
      throw badRequest(
        `invalid sandbox name ${JSON.stringify(name)}: use lowercase letters, digits and '-', at most ${this.maxNameLength} characters`,
      );
    }
    const holder = this.live(namespace).find((record) => record.name === name && record.id !== self);
    if (holder) throw conflict(`a sandbox named ${name} already exists in namespace ${namespace}`);
    return name;
  }
}

export function isGone(status: SandboxStatus): boolean {
  return status === 'terminated' || status === 'timeout';
}

/** The `SandboxInfo` JSON the SDK parses (snake_case; `sandbox_url` points back at the emulator). */
export function sandboxInfo(record: SandboxRecord, sandboxUrl: string): Record<string, unknown> {
  return {
    sandbox_id: record.id,
    namespace: record.namespace,
    status: record.status,
    image: record.image,
    resources: record.resources,
    timeout_secs: record.timeoutSecs,
    name: record.name,
    created_at: record.createdAt.toISOString(),
    terminated_at: record.terminatedAt?.toISOString() ?? null,
    termination_reason: record.terminationReason,
    sandbox_url: isGone(record.status) ? null : sandboxUrl,
    routing_hint: null,
    file_systems: [],
  };
}

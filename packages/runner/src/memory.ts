import { createHash } from 'node:crypto';
import type Anthropic from '@anthropic-ai/sdk';
import type { Sandbox } from '@statebox/core';
import { describeError, type RunnerEvent } from './events.js';

export type MemoryStoreResource = {
  type: 'memory_store';
  memory_store_id: string;
  access?: 'read_write' | 'read_only' | null;
  mount_path?: string | null;
  name?: string | null;
};

/** The marker that tells a synced folder from a stray one: sha256 of `version 1\n<store id>`. */
export const MARKER_FILE = '.anthropic-memory-store';

function markerContent(storeId: string): string {
  return createHash('sha256').update(`version 1\n${storeId}`).digest('hex');
}

function sha256(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

type Baseline = Map<string, { id: string; sha: string }>;

export type SyncReport = { uploaded: number; downloaded: number; deleted: number; conflicts: number };

/**
 * One memory store mounted into the sandbox at its `mount_path` (under /mnt/memory). The store is
 * pulled in full at the start; afterwards `sync()` uploads what the agent changed in the sandbox and
 * pulls what changed on the server, against the content hashes of the last sync. A conflict (both
 * sides changed) keeps the server's version, as the reference worker does. Read-only stores never
 * upload.
 */
export class MountedMemoryStore {
  readonly storeId: string;
  readonly root: string;
  readonly readOnly: boolean;
  readonly #client: Anthropic;
  readonly #sandbox: () => Promise<Sandbox>;
  #baseline: Baseline = new Map();

  constructor(client: Anthropic, sandbox: () => Promise<Sandbox>, resource: MemoryStoreResource) {
    this.#client = client;
    this.#sandbox = sandbox;
    this.storeId = resource.memory_store_id;
    this.readOnly = resource.access === 'read_only';
    const slug = (resource.name ?? resource.memory_store_id)
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-|-$/g, '');
    this.root = resource.mount_path ?? `/mnt/memory/${slug || resource.memory_store_id}`;
  }

  /** Pulls the whole store into the sandbox. Refuses a folder that belongs to another store. */
  async download(): Promise<number> {
    const sandbox = await this.#sandbox();
    const marker = await sandbox.readFile(`${this.root}/${MARKER_FILE}`, 'utf8').catch(() => undefined);
    if (marker !== undefined && marker.trim() !== markerContent(this.storeId)) {
      throw new Error(
        `${this.root} holds another memory store's files; refusing to mount ${this.storeId} over it`,
      );
    }
    await sandbox.writeFile(`${this.root}/${MARKER_FILE}`, `${markerContent(this.storeId)}\n`);
    const remote = await this.#listRemote();
    for (const memory of remote.values()) {
      const content = await this.#content(memory.id);
      await sandbox.writeFile(this.#local(memory.path), content);
      this.#baseline.set(memory.path, { id: memory.id, sha: sha256(content) });
    }
    return remote.size;
  }

  async sync(): Promise<SyncReport> {
    const report: SyncReport = { uploaded: 0, downloaded: 0, deleted: 0, conflicts: 0 };
    const sandbox = await this.#sandbox();
    const local = await this.#listLocal(sandbox);
    const remote = await this.#listRemote();
    const paths = new Set([...local.keys(), ...remote.keys(), ...this.#baseline.keys()]);
    for (const path of paths) {
      const base = this.#baseline.get(path);
      const localSha = local.get(path);
      const server = remote.get(path);
      const localChanged = localSha !== base?.sha;
      const serverChanged = server?.sha !== base?.sha;
      if (!localChanged && !serverChanged) continue;
      if (serverChanged && (!localChanged || localSha === server?.sha || this.readOnly)) {
        // Only the server moved (or a read-only store): mirror it.
        if (server) {
          const content = await this.#content(server.id);
          await sandbox.writeFile(this.#local(path), content);
          this.#baseline.set(path, { id: server.id, sha: server.sha });
        } else {
          await sandbox.exec(['rm', '-f', '--', this.#local(path)]);
          this.#baseline.delete(path);
        }
        report.downloaded++;
        continue;
      }
      if (serverChanged) {
        // Both sides changed: the server wins, as in the reference worker.
        report.conflicts++;
        if (server) {
          const content = await this.#content(server.id);
          await sandbox.writeFile(this.#local(path), content);
          this.#baseline.set(path, { id: server.id, sha: server.sha });
        }
        continue;
      }
      // Only the sandbox moved: upload.
      if (localSha === undefined) {
        if (base) {
          await this.#client.beta.memoryStores.memories.delete(base.id, { memory_store_id: this.storeId });
          this.#baseline.delete(path);
          report.deleted++;
        }
        continue;
      }
      const content = await sandbox.readFile(this.#local(path), 'utf8');
      if (base) {
        const updated = await this.#client.beta.memoryStores.memories.update(base.id, {
          memory_store_id: this.storeId,
          content,
          precondition: { type: 'content_sha256', content_sha256: base.sha },
        });
        this.#baseline.set(path, { id: updated.id, sha: updated.content_sha256 });
      } else {
        const created = await this.#client.beta.memoryStores.memories.create(this.storeId, { path, content });
        this.#baseline.set(path, { id: created.id, sha: created.content_sha256 });
      }
      report.uploaded++;
    }
    return report;
  }

  #local(path: string): string {
    return `${this.root}${path.startsWith('/') ? path : `/${path}`}`;
  }

  async #listLocal(sandbox: Sandbox): Promise<Map<string, string>> {
    const listing = await sandbox.exec(
      `cd ${JSON.stringify(this.root)} 2>/dev/null && find . -type f ! -name ${MARKER_FILE} -exec sha256sum {} + || true`,
    );
    const files = new Map<string, string>();
    for (const line of listing.stdout.split('\n')) {
      const match = /^([0-9a-f]{64}) {2}\.(\/.*)$/.exec(line);
      if (match) files.set(match[2]!, match[1]!);
    }
    return files;
  }

  async #listRemote(): Promise<Map<string, { id: string; sha: string; path: string }>> {
    const memories = new Map<string, { id: string; sha: string; path: string }>();
    for await (const item of this.#client.beta.memoryStores.memories.list(this.storeId, {})) {
      const memory = item as { type?: string; id?: string; path?: string; content_sha256?: string };
      if (memory.type !== 'memory' || !memory.id || !memory.path || !memory.content_sha256) continue;
      memories.set(memory.path, { id: memory.id, sha: memory.content_sha256, path: memory.path });
    }
    return memories;
  }

  async #content(memoryId: string): Promise<string> {
    const memory = await this.#client.beta.memoryStores.memories.retrieve(memoryId, {
      memory_store_id: this.storeId,
      view: 'full',
    });
    return memory.content ?? '';
  }
}

/** Sync one mounted store, reporting what moved as `memory.synced` and a failure as an `error` event. */
export async function syncMemoryStore(
  store: MountedMemoryStore,
  sessionId: string,
  emit: (event: RunnerEvent) => void,
): Promise<void> {
  try {
    const report = await store.sync();
    if (report.uploaded + report.downloaded + report.deleted + report.conflicts > 0) {
      emit({ type: 'memory.synced', sessionId, storeId: store.storeId, ...report });
    }
  } catch (error) {
    emit({ type: 'error', sessionId, message: `memory store ${store.storeId}: ${describeError(error)}` });
  }
}

/** Downloads every memory store the session attaches into its sandbox (`/mnt/memory/<store>`). */
export async function mountMemoryStores(
  client: Anthropic,
  session: { resources?: unknown },
  sandbox: () => Promise<Sandbox>,
  sessionId: string,
  emit: (event: RunnerEvent) => void,
): Promise<MountedMemoryStore[]> {
  const resources = ((session.resources ?? []) as MemoryStoreResource[]).filter(
    (resource) => resource.type === 'memory_store',
  );
  const stores: MountedMemoryStore[] = [];
  for (const resource of resources) {
    const store = new MountedMemoryStore(client, sandbox, resource);
    const count = await store.download();
    stores.push(store);
    emit({ type: 'memory.mounted', sessionId, storeId: store.storeId, root: store.root, memories: count });
  }
  return stores;
}

import { sha256 } from '@statebox/adapter-kit';
import { ApiError, badRequest, conflict, notFound } from './errors.js';
import { newId, now } from './ids.js';

/** A memory store registered in-process or created with `POST /v1/memory_stores`. */
export interface MemoryStoreDefinition {
  name: string;
  description?: string;
  /** Initial memories: path → content. */
  memories?: Record<string, string>;
}

interface MemoryRecord {
  id: string;
  path: string;
  content: string;
  createdAt: string;
  updatedAt: string;
  versionId: string;
}

export interface MemoryStoreRecord {
  id: string;
  name: string;
  description: string;
  createdAt: string;
  memories: Map<string, MemoryRecord>;
}

export class MemoryStores {
  readonly stores = new Map<string, MemoryStoreRecord>();

  create(definition: MemoryStoreDefinition): MemoryStoreRecord {
    const store: MemoryStoreRecord = {
      id: newId('memstore'),
      name: definition.name,
      description: definition.description ?? '',
      createdAt: now(),
      memories: new Map(),
    };
    this.stores.set(store.id, store);
    for (const [path, content] of Object.entries(definition.memories ?? {}))
      this.createMemory(store, path, content);
    return store;
  }

  get(id: string): MemoryStoreRecord {
    const store = this.stores.get(id);
    if (!store) throw notFound(`memory store ${id} not found`);
    return store;
  }

  describeStore(store: MemoryStoreRecord): Record<string, unknown> {
    return {
      type: 'memory_store',
      id: store.id,
      name: store.name,
      description: store.description,
      archived_at: null,
      created_at: store.createdAt,
      updated_at: store.createdAt,
      metadata: {},
    };
  }

  describe(store: MemoryStoreRecord, memory: MemoryRecord, view: string | null): Record<string, unknown> {
    const body: Record<string, unknown> = {
      type: 'memory',
      id: memory.id,
      memory_store_id: store.id,
      memory_version_id: memory.versionId,
      path: memory.path,
      content_sha256: sha256(memory.content),
      content_size_bytes: Buffer.byteLength(memory.content, 'utf8'),
      created_at: memory.createdAt,
      updated_at: memory.updatedAt,
    };
    if (view === 'full') body.content = memory.content;
    return body;
  }

  list(store: MemoryStoreRecord, pathPrefix: string | null): MemoryRecord[] {
    return [...store.memories.values()]
      .filter((memory) => pathPrefix === null || memory.path.startsWith(pathPrefix))
      .sort((a, b) => a.path.localeCompare(b.path));
  }

  findMemory(store: MemoryStoreRecord, memoryId: string): MemoryRecord {
    const memory = store.memories.get(memoryId);
    if (!memory) throw notFound(`memory ${memoryId} not found in memory store ${store.id}`);
    return memory;
  }

  createMemory(store: MemoryStoreRecord, path: string, content: string): MemoryRecord {
    if (typeof path !== 'string' || !path.startsWith('/')) throw badRequest('path must be an absolute path');
    if (typeof content !== 'string') throw badRequest('content must be a string');
    const existing = [...store.memories.values()].find((memory) => memory.path === path);
    if (existing) {
      throw new ApiError(409, 'memory_path_conflict_error', `a memory already exists at ${path}`, {
        retryable: false,
      });
    }
    const stamp = now();
    const memory: MemoryRecord = {
      id: newId('mem'),
      path,
      content,
      createdAt: stamp,
      updatedAt: stamp,
      versionId: newId('memver'),
    };
    store.memories.set(memory.id, memory);
    return memory;
  }

  updateMemory(
    store: MemoryStoreRecord,
    memoryId: string,
    patch: { content?: unknown; path?: unknown; precondition?: unknown },
  ): MemoryRecord {
    const memory = this.findMemory(store, memoryId);
    const precondition = patch.precondition as { type?: string; content_sha256?: string } | undefined;
    if (precondition) {
      if (precondition.type !== 'content_sha256')
        throw badRequest('precondition.type must be content_sha256');
      if (
        precondition.content_sha256 !== undefined &&
        precondition.content_sha256 !== sha256(memory.content)
      ) {
        throw conflict(
          `memory ${memoryId} changed: content_sha256 does not match the precondition`,
          'memory_precondition_failed_error',
        );
      }
    }
    if (patch.path !== undefined && patch.path !== null) {
      if (typeof patch.path !== 'string' || !patch.path.startsWith('/')) {
        throw badRequest('path must be an absolute path');
      }
      const clash = [...store.memories.values()].find((m) => m.path === patch.path && m.id !== memoryId);
      if (clash) {
        throw new ApiError(409, 'memory_path_conflict_error', `a memory already exists at ${patch.path}`, {
          retryable: false,
        });
      }
      memory.path = patch.path;
    }
    if (patch.content !== undefined && patch.content !== null) {
      if (typeof patch.content !== 'string') throw badRequest('content must be a string');
      memory.content = patch.content;
    }
    memory.updatedAt = now();
    memory.versionId = newId('memver');
    return memory;
  }

  deleteMemory(store: MemoryStoreRecord, memoryId: string, expectedSha256: string | null): void {
    const memory = this.findMemory(store, memoryId);
    if (expectedSha256 !== null && expectedSha256 !== sha256(memory.content)) {
      throw conflict(
        `memory ${memoryId} changed: content_sha256 does not match expected_content_sha256`,
        'memory_precondition_failed_error',
      );
    }
    store.memories.delete(memoryId);
  }
}

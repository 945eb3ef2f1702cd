export { readArchive } from './archive.js';
export type { RunnerEvent } from './events.js';
export { holdLease, type Lease, type LeaseEnd, sessionsTokenFromSecret } from './lease.js';
export { MARKER_FILE, type MemoryStoreResource, MountedMemoryStore } from './memory.js';
export {
  acquireSessionSandbox,
  ENVIRONMENT_LABEL,
  FORK_FROM_METADATA,
  ForkRefusedError,
  findSessionSandbox,
  MANAGED_BY_LABEL,
  SESSION_LABEL,
} from './session-sandbox.js';
export { liveWorkBySession, ownerOf, type WorkView } from './session-work.js';
export { installSkills } from './skills.js';
export * from './tools/index.js';
export { Runner, type RunnerOptions } from './worker.js';

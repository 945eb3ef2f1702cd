/**
 * A cloud backend's vendor SDK called straight, with no statebox in between: the baseline of the
 * adapter-overhead figures. The per-adapter benchmarks (`--provider tensorlake|daytona|cloudflare`) and
 * the comparison (`--compare`) both build their raw side from the modules in this directory.
 */

/** The operations the comparison prices the adapter against. */
export const rawOperations = [
  ['create', 'create'],
  ['exec', 'exec `true`'],
  ['write_1mib', 'writeFile 1 MiB'],
  ['read_1mib', 'readFile 1 MiB'],
  ['suspend', 'suspend'],
  ['resume', 'resume'],
  ['fork', 'fork (running, fresh writes)'],
  ['destroy', 'destroy (a fork)'],
] as const;

export type RawOperation = (typeof rawOperations)[number][0];

/**
 * One backend's raw side. Each `measure` function resolves to the operation's duration in ms, taken
 * where the SDK runs (`timedAt`): around the SDK call in this process, or inside the Cloudflare Worker.
 * An operation the SDK does not have is left out of `measure`, and `missing` says why.
 */
export type RawSdk = {
  /** What the raw side calls, e.g. `tensorlake 0.5.89 SDK`. */
  sdk: string;
  /** Where the durations are taken. */
  timedAt: string;
  /** Why an operation has no raw equivalent; shown as "no raw equivalent: <reason>". */
  missing: Partial<Record<RawOperation, string>>;
  /**
   * The raw side's long-lived sandbox, the counterpart of the adapter's main one. `adapterId` is the
   * adapter's main sandbox, for an SDK that can only act on it (Cloudflare's, inside the Worker): then
   * `shared` is true and the workspace is already there.
   */
  open(adapterId: string): Promise<{ id: string; shared: boolean }>;
  /** Destroys what `open` made (nothing when shared). */
  close(id: string): Promise<void>;
  /** Untimed setup in an own sandbox: a shell command (throws on a non-zero exit) and a file upload. */
  run?(id: string, command: string): Promise<void>;
  upload?(id: string, path: string, data: Uint8Array): Promise<void>;
  measure: Partial<{
    /** A new sandbox until usable; destroyed afterwards, untimed. */
    create(): Promise<number>;
    exec(id: string): Promise<number>;
    write_1mib(id: string, path: string, data: Uint8Array): Promise<number>;
    read_1mib(id: string, path: string): Promise<number>;
    suspend(id: string): Promise<number>;
    resume(id: string): Promise<number>;
    /** `child` is the fork's id, or null when the SDK side already removed it. */
    fork(id: string): Promise<{ ms: number; child: string | null }>;
    /** Destroys a fork (`child` from `fork`, or a scratch sandbox of its own when null). */
    destroy(child: string | null): Promise<number>;
  }>;
};

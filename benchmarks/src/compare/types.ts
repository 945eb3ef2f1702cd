/**
 * The comparison drives several sandbox libraries through one small surface, so that the same
 * workload runs on statebox's backends and on a peer library alike. A `Box` is one sandbox; a `Driver`
 * makes, finds, suspends, forks and destroys them. Capabilities a library lacks are `null` with the
 * reason, and are reported as "not supported", never skipped silently.
 */

/** Where a figure came from. */
export type Source =
  /** Measured here on a real backend (this machine's kernel, this Docker daemon). */
  | 'real'
  /** Measured against a loopback emulator: the adapter's own overhead, not the vendor's latency. */
  | 'emulator'
  /** Measured live against the vendor, with credentials. */
  | 'live';

export const sourceText: Record<Source, string> = {
  real: 'measured here on a real backend',
  emulator: "measured against a loopback emulator (adapter overhead only, not the vendor's latency)",
  live: 'measured live against the vendor',
};

export type ExecOut = { exitCode: number; stdout: string; stderr: string };

export type Box = {
  readonly id: string;
  /** The workspace as the box's commands see it; relative paths in `exec`, files and `cwd` start here. */
  readonly workdir: string;
  /** The home directory the scenario installs its tool under. */
  readonly home: string;
  exec(command: string, options?: { cwd?: string; stdin?: Uint8Array }): Promise<ExecOut>;
  writeFile(path: string, data: Uint8Array | string, mode?: number): Promise<void>;
  readFile(path: string): Promise<Uint8Array>;
};

/** A persistent shell: state (cwd, variables, functions) carries from one call to the next. */
export type Shell = (command: string) => Promise<string>;

/** An operation a library cannot do, with the reason shown in the report. */
export type Unsupported = { unsupported: string };

export type Driver = {
  /** The backend column's name, e.g. `local`, `docker`, `tanstack/local-process`. */
  readonly name: string;
  /** The library driving it, e.g. `statebox` or `@tanstack/ai-sandbox 0.2.4`. */
  readonly library: string;
  /** The machine or service underneath, e.g. `local` or `docker`. */
  readonly backend: string;
  readonly source: Source;
  /** What survives a suspend and what a fork copies, as the library declares it. */
  readonly declared: { suspend: string; fork: string };
  create(): Promise<Box>;
  /** A handle to an existing box from its id, as a new process would get one. */
  attach(id: string): Promise<Box>;
  suspend: ((box: Box) => Promise<void>) | Unsupported;
  resume: ((box: Box) => Promise<void>) | Unsupported;
  fork: ((box: Box) => Promise<Box>) | Unsupported;
  destroy(box: Box): Promise<void>;
  /** The library's persistent shell for a session, or why it has none. */
  shell(box: Box, session: string): Shell | Unsupported;
  /** Destroys whatever this run left behind and releases the driver. */
  close(): Promise<void>;
};

/**
 * A driver as data, so that the seed scenario's morning half can rebuild it in a new process.
 * `statebox`: a config for `@statebox/core`'s `createProvider` (plus environment variables the
 * adapter reads, e.g. an emulator's URL). `tanstack-local-process`: the peer's base directory.
 */
export type DriverSpec =
  | {
      kind: 'statebox';
      name: string;
      source: Source;
      config: { provider: string } & Record<string, unknown>;
      env?: Record<string, string>;
      /** Image or template for `create`, when the backend takes one. */
      image?: string;
      runId: string;
    }
  | { kind: 'tanstack-local-process'; name: string; baseDir: string; runId: string };

export function isUnsupported(value: unknown): value is Unsupported {
  return typeof value === 'object' && value !== null && 'unsupported' in value;
}

/** Fails loudly on a non-zero exit: the scenario's commands are supposed to work. */
export async function sh(box: Box, command: string, cwd?: string): Promise<string> {
  const result = await box.exec(command, cwd === undefined ? {} : { cwd });
  if (result.exitCode !== 0)
    throw new Error(
      `\`${command.slice(0, 120)}\` exited ${result.exitCode} in ${box.id}: ${(result.stderr || result.stdout).trim().slice(0, 400)}`,
    );
  return result.stdout;
}

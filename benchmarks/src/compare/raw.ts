import { randomBytes } from 'node:crypto';
import { type RawOperation, type RawSdk, rawOperations } from '../raw-sdk/types.ts';
import { median, round } from '../stats.ts';
import { generateWorkspace, SCRATCH_DIR, type WorkspacePlan } from '../workspace.ts';

/**
 * The adapter's overhead over the vendor's own SDK, measured inside the comparison's lifecycle rounds:
 * right after (or, every other round, right before) each adapter operation of a cloud backend, the
 * same operation goes through that vendor's SDK against the same endpoint. The adapter's figures are
 * the lifecycle lane's own samples, so both sides share the rounds, the load and the clock.
 */

export type { RawSdk } from '../raw-sdk/types.ts';

export type RawRow = {
  operation: RawOperation;
  label: string;
  /** Medians in ms; null when that side has no sample (raw: no equivalent, or it failed). */
  adapterMs: number | null;
  rawMs: number | null;
  /** adapter − raw, in ms and in % of raw; null when either side is missing. */
  overheadMs: number | null;
  overheadPct: number | null;
  adapterSamples: number[];
  rawSamples: number[];
  /** Why the SDK has no such operation; null when it has one. */
  noRawEquivalent: string | null;
};

export type RawResult = {
  backend: string;
  sdk: string;
  timedAt: string;
  /** Where the raw side's operations ran: its own sandbox with the same workspace, or the adapter's. */
  sandbox: 'own' | 'adapter';
  rows: RawRow[];
  error: string | null;
};

/** The raw side of one lifecycle lane. */
export type RawLane = {
  sdk: RawSdk;
  id: string | undefined;
  shared: boolean;
  samples: Map<RawOperation, number[]>;
  error: string | null;
};

export const RAW_WORKDIR = '/workspace';
const RAW_IO = `${RAW_WORKDIR}/${SCRATCH_DIR}/io.bin`;

export function rawLane(sdk: RawSdk): RawLane {
  return { sdk, id: undefined, shared: false, samples: new Map(), error: null };
}

/**
 * Opens the raw side's main sandbox and, when it is its own, loads the same generated workspace into
 * it (an archive uploaded through the SDK, then `tar -x`), so that suspend and fork seal the same bytes.
 */
export async function openRawLane(raw: RawLane, adapterId: string, plan: WorkspacePlan): Promise<void> {
  try {
    await loadRawLane(raw, adapterId, plan);
  } catch (error) {
    raw.error = `opening the raw side: ${(error as Error).message}`;
  }
}

async function loadRawLane(raw: RawLane, adapterId: string, plan: WorkspacePlan): Promise<void> {
  const opened = await raw.sdk.open(adapterId);
  raw.id = opened.id;
  raw.shared = opened.shared;
  if (opened.shared) return;
  const { run, upload } = raw.sdk;
  if (!run || !upload) return;
  const id = opened.id;
  await run(id, `mkdir -p ${RAW_WORKDIR}/${SCRATCH_DIR}`);
  let part = 0;
  await generateWorkspace(plan, {
    async extract(archive) {
      const path = `/tmp/statebox-raw-load-${part++}.tar`;
      await upload(id, path, archive);
      await run(id, `tar -x -f ${path} -C ${RAW_WORKDIR} && rm -f ${path}`);
    },
    writeRandom: (path, bytes) => run(id, `head -c ${bytes} /dev/urandom > ${RAW_WORKDIR}/${path}`),
  });
}

/**
 * Measures one raw operation and records it; a failure stops the raw side of this lane (reported as
 * its error), never the adapter's lane.
 */
export async function rawStep(
  raw: RawLane | undefined,
  what: string,
  action: (raw: RawLane, id: string) => Promise<void>,
): Promise<void> {
  if (!raw || raw.error !== null || raw.id === undefined) return;
  try {
    await action(raw, raw.id);
  } catch (error) {
    raw.error = `${what}: ${(error as Error).message}`;
  }
}

export function pushRaw(raw: RawLane, operation: RawOperation, ms: number): void {
  const list = raw.samples.get(operation) ?? [];
  list.push(ms);
  raw.samples.set(operation, list);
}

/** The raw side's steps, in the lifecycle's order; each returns nothing and records its samples. */
export const rawSteps = {
  async create(raw: RawLane) {
    if (raw.sdk.measure.create) pushRaw(raw, 'create', await raw.sdk.measure.create());
  },
  async exec(raw: RawLane, id: string) {
    if (raw.sdk.measure.exec) pushRaw(raw, 'exec', await raw.sdk.measure.exec(id));
  },
  async files(raw: RawLane, id: string, payload: Uint8Array) {
    const { write_1mib, read_1mib } = raw.sdk.measure;
    if (write_1mib) pushRaw(raw, 'write_1mib', await write_1mib(id, RAW_IO, payload));
    if (read_1mib) pushRaw(raw, 'read_1mib', await read_1mib(id, RAW_IO));
  },
  async suspendResume(raw: RawLane, id: string) {
    const { suspend, resume } = raw.sdk.measure;
    if (!suspend || !resume) return;
    pushRaw(raw, 'suspend', await suspend(id));
    pushRaw(raw, 'resume', await resume(id));
  },
  async forkDestroy(raw: RawLane, id: string, round: number) {
    const { fork, destroy } = raw.sdk.measure;
    // As on the adapter's side, the source has fresh writes since its last fork (untimed).
    if (!raw.shared && raw.sdk.upload)
      await raw.sdk.upload(id, `${RAW_WORKDIR}/${SCRATCH_DIR}/fresh-${round}.bin`, randomBytes(1024 * 1024));
    let child: string | null = null;
    if (fork) {
      const forked = await fork(id);
      pushRaw(raw, 'fork', forked.ms);
      child = forked.child;
    }
    if (destroy && (child !== null || raw.shared || !fork)) pushRaw(raw, 'destroy', await destroy(child));
  },
};

/** Destroys what the raw side made; errors are the run's noise, not a figure. */
export async function closeRawLane(raw: RawLane | undefined): Promise<void> {
  if (!raw || raw.id === undefined) return;
  await raw.sdk.close(raw.id).catch(() => undefined);
}

/** The raw-vs-adapter rows of one backend from both sides' samples. */
export function rawResult(
  backend: string,
  raw: RawLane,
  adapterSamples: Map<string, number[]>,
  adapterError: string | null,
): RawResult {
  const rows: RawRow[] = rawOperations.map(([operation, label]) => {
    const a = adapterSamples.get(operation) ?? [];
    const r = raw.samples.get(operation) ?? [];
    const adapterMs = a.length > 0 ? round(median(a)) : null;
    const rawMs = r.length > 0 ? round(median(r)) : null;
    const both = adapterMs !== null && rawMs !== null;
    const missing = raw.sdk.measure[operation]
      ? null
      : (raw.sdk.missing[operation] ?? 'the SDK has no such call');
    return {
      operation,
      label,
      adapterMs,
      rawMs,
      overheadMs: both ? round(adapterMs - rawMs) : null,
      overheadPct: both && rawMs > 0 ? round(((adapterMs - rawMs) / rawMs) * 100) : null,
      adapterSamples: a.map(round),
      rawSamples: r.map(round),
      noRawEquivalent: missing,
    };
  });
  const error = raw.error ?? (adapterError && `the adapter's lane stopped: ${adapterError}`);
  return {
    backend,
    sdk: raw.sdk.sdk,
    timedAt: raw.sdk.timedAt,
    sandbox: raw.shared ? 'adapter' : 'own',
    rows,
    error: error || null,
  };
}

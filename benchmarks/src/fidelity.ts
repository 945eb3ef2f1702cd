import type { Sandbox } from '@statebox/core';
import { BIG_FILE, SCRATCH_DIR, WORKSPACE } from './workspace.ts';

/**
 * State fidelity: a benchmark of suspend or fork that does not check the state came back measures
 * nothing (E2B#884 lost files on a second resume). After each lifecycle operation the harness compares
 * the workspace against the manifest taken right after generation: the file count, the sha256 of a
 * sample of files and of the big file, and a marker written just before the operation.
 */

export type Manifest = { fileCount: number; hashes: Record<string, string> };

export type FidelityCheck = {
  /** The operation this check follows, e.g. `resume #3` or `fork #2 (child)`. */
  after: string;
  sandboxId: string;
  ok: boolean;
  problems: string[];
  ms: number;
};

export const MARKER = `${SCRATCH_DIR}/marker`;

export class FidelityError extends Error {
  readonly check: FidelityCheck;
  constructor(check: FidelityCheck) {
    super(`State lost after ${check.after} in sandbox ${check.sandboxId}: ${check.problems.join('; ')}`);
    this.name = 'FidelityError';
    this.check = check;
  }
}

/** Counts files (scratch dir excluded) and hashes the sample plus the big file, in one exec. */
export async function captureManifest(sandbox: Sandbox, sample: readonly string[]): Promise<Manifest> {
  const paths = [BIG_FILE, ...sample];
  const script = `cd ${WORKSPACE} || exit 1
find . -path ./${SCRATCH_DIR} -prune -o -type f -print | wc -l
sha256sum -- "$@"`;
  const result = await sandbox.exec(['/bin/sh', '-c', script, 'statebox-bench-manifest', ...paths]);
  const lines = result.stdout.trim().split('\n');
  const fileCount = Number(lines.shift()?.trim());
  const hashes: Record<string, string> = {};
  for (const line of lines) {
    const match = /^([0-9a-f]{64})\s+\*?(.+)$/.exec(line.trim());
    if (match) hashes[match[2]!] = match[1]!;
  }
  if (result.exitCode !== 0 && Object.keys(hashes).length === 0) {
    throw new Error(
      `Manifest of sandbox ${sandbox.id} failed (exit ${result.exitCode}): ${result.stderr.trim()}`,
    );
  }
  return { fileCount, hashes };
}

export function compareManifests(expected: Manifest, actual: Manifest): string[] {
  const problems: string[] = [];
  if (actual.fileCount !== expected.fileCount) {
    problems.push(`file count ${actual.fileCount}, expected ${expected.fileCount}`);
  }
  for (const [path, hash] of Object.entries(expected.hashes)) {
    const found = actual.hashes[path];
    if (found === undefined) problems.push(`${path} missing`);
    else if (found !== hash)
      problems.push(`${path} sha256 ${found.slice(0, 12)}…, expected ${hash.slice(0, 12)}…`);
  }
  return problems;
}

/** Compares the workspace (and the marker, when one is expected) with the manifest; throws FidelityError on a difference. */
export async function verifyState(
  sandbox: Sandbox,
  after: string,
  expected: Manifest,
  sample: readonly string[],
  marker: string | undefined,
  record: (check: FidelityCheck) => void,
): Promise<void> {
  const started = performance.now();
  const problems = compareManifests(expected, await captureManifest(sandbox, sample));
  if (marker !== undefined) {
    const found = await sandbox
      .readFile(`${WORKSPACE}/${MARKER}`, 'utf8')
      .catch((error: Error) => `<${error.message}>`);
    if (found !== marker)
      problems.push(`marker is ${JSON.stringify(found.slice(0, 80))}, expected ${JSON.stringify(marker)}`);
  }
  const check: FidelityCheck = {
    after,
    sandboxId: sandbox.id,
    ok: problems.length === 0,
    problems,
    ms: performance.now() - started,
  };
  record(check);
  if (!check.ok) throw new FidelityError(check);
}

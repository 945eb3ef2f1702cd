import { compareManifests, type Manifest } from '../fidelity.ts';
import { BIG_FILE, generateWorkspace, SCRATCH_DIR, type WorkspacePlan } from '../workspace.ts';
import type { Box } from './types.ts';

/**
 * The fidelity checks of the main harness (`../fidelity.ts`), on a `Box` of any library: the file
 * count (scratch dir excluded) and the sha256 of a sample plus the big file, taken in the box's own
 * workdir, and a marker written just before the operation.
 */

export const MARKER = `${SCRATCH_DIR}/marker`;

export type Check = { after: string; backend: string; ok: boolean; problems: string[] };

export async function manifestOf(box: Box, sample: readonly string[]): Promise<Manifest> {
  const paths = [BIG_FILE, ...sample];
  const quoted = paths.map((path) => `'${path.replaceAll("'", "'\\''")}'`).join(' ');
  const result = await box.exec(
    `find . -path ./${SCRATCH_DIR} -prune -o -path ./.home -prune -o -type f -print | wc -l; sha256sum -- ${quoted}`,
  );
  const lines = result.stdout.trim().split('\n');
  const fileCount = Number(lines.shift()?.trim());
  const hashes: Record<string, string> = {};
  for (const line of lines) {
    const match = /^([0-9a-f]{64})\s+\*?(.+)$/.exec(line.trim());
    if (match) hashes[match[2]!] = match[1]!;
  }
  if (result.exitCode !== 0 && Object.keys(hashes).length === 0)
    throw new Error(`manifest of ${box.id} failed (exit ${result.exitCode}): ${result.stderr.trim()}`);
  return { fileCount, hashes };
}

/** Loads the planned tree into a fresh box (tar archives over exec stdin) and checks it arrived whole. */
export async function loadWorkspace(box: Box, plan: WorkspacePlan): Promise<Manifest> {
  await box.exec(`mkdir -p ${SCRATCH_DIR}`);
  const generated = await generateWorkspace(plan, {
    async extract(archive) {
      const result = await box.exec('tar -x -f - -C .', { stdin: archive });
      if (result.exitCode !== 0)
        throw new Error(`tar -x in ${box.id} exited ${result.exitCode}: ${result.stderr}`);
    },
    async writeRandom(path, bytes) {
      const result = await box.exec(`head -c ${bytes} /dev/urandom > ${path}`);
      if (result.exitCode !== 0) throw new Error(`writing ${path} in ${box.id}: ${result.stderr}`);
    },
  });
  const found = await manifestOf(box, plan.sample);
  const problems = compareManifests(
    { fileCount: generated.files, hashes: generated.sampleHashes },
    { fileCount: found.fileCount, hashes: found.hashes },
  );
  if (problems.length > 0)
    throw new Error(`workspace in ${box.id} differs from the generated one: ${problems.join('; ')}`);
  return found;
}

/** Compares a box's workspace with the reference manifest and its marker; returns the check. */
export async function checkState(
  box: Box,
  backend: string,
  after: string,
  expected: Manifest,
  sample: readonly string[],
  marker: string | undefined,
): Promise<Check> {
  const problems = compareManifests(expected, await manifestOf(box, sample));
  if (marker !== undefined) {
    const found = await box
      .readFile(MARKER)
      .then((bytes) => Buffer.from(bytes).toString('utf8'))
      .catch((error: Error) => `<${error.message}>`);
    if (found !== marker)
      problems.push(`marker is ${JSON.stringify(found.slice(0, 80))}, expected ${JSON.stringify(marker)}`);
  }
  return { after, backend, ok: problems.length === 0, problems };
}

import { mkdir, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { extractSkillArchive } from '@anthropic-ai/sdk/tools/agent-toolset/node';

export type ArchiveEntry = { path: string; data: Uint8Array; executable: boolean };

/**
 * Reads a skill archive with the SDK's own extractor (`extractSkillArchive`, the one its worker uses):
 * zip through `unzip`, every tar flavour (PAX, GNU, gzip, bzip2, xz) through `tar`, on the runner's
 * host, so the sandbox needs neither tool. What the SDK guarantees is what comes out: an absolute or
 * `..` member rejects the archive; symlinks, hard links and devices are left out; modes become 0755
 * (any execute bit) or 0644; a single wrapper directory is stripped, so `SKILL.md` is at the root.
 * An archive `tar` and `unzip` cannot read is an error, never an empty skill.
 */
export async function readArchive(bytes: Uint8Array): Promise<ArchiveEntry[]> {
  const scratch = await mkdtemp(join(tmpdir(), 'statebox-skill-'));
  try {
    const dest = join(scratch, 'skill');
    await mkdir(dest, { mode: 0o700 });
    await extractSkillArchive(new Response(bytes), dest);
    const entries: ArchiveEntry[] = [];
    await collect(dest, '', entries);
    if (entries.length === 0) throw new Error('the skill archive holds no regular file');
    return entries.sort((a, b) => a.path.localeCompare(b.path));
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

async function collect(root: string, prefix: string, into: ArchiveEntry[]): Promise<void> {
  for (const entry of await readdir(join(root, prefix), { withFileTypes: true })) {
    const relative = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) await collect(root, relative, into);
    else if (entry.isFile()) {
      const full = join(root, relative);
      const mode = (await stat(full)).mode;
      into.push({ path: relative, data: await readFile(full), executable: (mode & 0o111) !== 0 });
    }
  }
}

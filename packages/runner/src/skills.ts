import type Anthropic from '@anthropic-ai/sdk';
import type { Sandbox } from '@statebox/core';
import { readArchive } from './archive.js';

export type SkillReference = { skill_id: string; version?: string | null; type?: string };

export type InstalledSkill = { skillId: string; name: string; directory: string; files: number };

/**
 * Downloads the agent's skills into the sandbox, at `<workdir>/skills/<name>/`, where the agent's
 * system prompt says they are. Tries the per-session client first and the environment key second
 * (skill downloads with a sessions token are reported to be refused). One failing skill is reported
 * and does not stop the others. Modes are normalised to 0755 or 0644, keeping the executable bit.
 */
export async function installSkills(
  clients: Anthropic[],
  sandbox: Sandbox,
  skills: readonly SkillReference[],
  options: { workdir: string; onError: (skillId: string, error: unknown) => void },
): Promise<InstalledSkill[]> {
  const installed: InstalledSkill[] = [];
  for (const skill of skills) {
    try {
      const { name, archive } = await download(clients, skill);
      const safeName = /^[A-Za-z0-9._-]+$/.test(name) && !/^\.+$/.test(name) ? name : skill.skill_id;
      const directory = `${options.workdir}/skills/${safeName}`;
      const entries = await readArchive(archive);
      for (const entry of entries) {
        await sandbox.writeFile(`${directory}/${entry.path}`, entry.data, {
          mode: entry.executable ? 0o755 : 0o644,
        });
      }
      installed.push({ skillId: skill.skill_id, name: safeName, directory, files: entries.length });
    } catch (error) {
      options.onError(skill.skill_id, error);
    }
  }
  return installed;
}

async function download(
  clients: Anthropic[],
  skill: SkillReference,
): Promise<{ name: string; archive: Uint8Array }> {
  let lastError: unknown;
  for (const client of clients) {
    try {
      const version = await client.beta.skills.versions.retrieve(skill.version ?? 'latest', {
        skill_id: skill.skill_id,
      });
      // `latest` is an alias only retrieve resolves; download by the concrete version id.
      const response = await client.beta.skills.versions.download(version.id, { skill_id: skill.skill_id });
      const archive = new Uint8Array(await response.arrayBuffer());
      const name = version.name.trim().split('/').pop() ?? '';
      return { name: name || skill.skill_id, archive };
    } catch (error) {
      lastError = error;
    }
  }
  throw lastError;
}

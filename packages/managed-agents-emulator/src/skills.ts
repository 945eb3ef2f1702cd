import { packTar, type TarEntry } from 'modern-tar';
import { notFound } from './errors.js';
import { now } from './ids.js';

/** A skill registered in-process; `GET /v1/skills/{id}/versions/{version}/content` serves its files as a tar. */
export interface SkillDefinition {
  /** Skill id as agents reference it (`skill_...` for custom skills, e.g. `xlsx` for Anthropic ones). */
  id: string;
  /** Kebab-case slug: the directory the worker extracts into (`<workdir>/skills/<name>/`). */
  name: string;
  description?: string;
  /** Version id; defaults to a timestamp-like id. `latest` resolves to the last registered version. */
  version?: string;
  /** Files relative to the skill root. A string is UTF-8 content with mode 0644. */
  files: Record<string, string | { content: string | Buffer; mode?: number }>;
}

interface SkillVersionRecord {
  definition: SkillDefinition;
  versionId: string;
  createdAt: string;
}

export class SkillRegistry {
  readonly #versions = new Map<string, SkillVersionRecord[]>();
  #counter = 0;

  add(definition: SkillDefinition): { skillId: string; version: string } {
    const versionId = definition.version ?? `${Date.now()}${String(this.#counter++).padStart(6, '0')}`;
    const list = this.#versions.get(definition.id) ?? [];
    list.push({ definition, versionId, createdAt: now() });
    this.#versions.set(definition.id, list);
    return { skillId: definition.id, version: versionId };
  }

  resolve(skillId: string, version: string): SkillVersionRecord {
    const list = this.#versions.get(skillId);
    if (!list || list.length === 0) throw notFound(`skill ${skillId} not found`);
    const record = version === 'latest' ? list[list.length - 1] : list.find((v) => v.versionId === version);
    if (!record) throw notFound(`version ${version} of skill ${skillId} not found`);
    return record;
  }

  describe(record: SkillVersionRecord): Record<string, unknown> {
    return {
      type: 'skill_version',
      id: record.versionId,
      skill_id: record.definition.id,
      name: record.definition.name,
      description: record.definition.description ?? '',
      created_at: record.createdAt,
    };
  }

  /**
   * The version's files as a tar under one top-level `<name>/` directory, the layout the SDK's skill
   * extractor expects (it lists with `tar -tvf`, rejects links and devices, and strips one wrapper
   * directory). Written with modern-tar (no dependencies).
   */
  archive(record: SkillVersionRecord): Promise<Uint8Array<ArrayBuffer>> {
    const root = record.definition.name;
    const mtime = new Date(Math.floor(Date.now() / 1000) * 1000);
    const owner = { uid: 0, gid: 0, uname: 'root', gname: 'root', mtime };
    const files = Object.entries(record.definition.files).map(([path, value]) => {
      const name = path.split('/').filter(Boolean).join('/');
      if (typeof value === 'string') return { name, content: Buffer.from(value, 'utf8'), mode: 0o644 };
      const content = typeof value.content === 'string' ? Buffer.from(value.content, 'utf8') : value.content;
      return { name, content, mode: value.mode ?? 0o644 };
    });
    const directories = new Set<string>([`${root}/`]);
    for (const file of files) {
      const segments = file.name.split('/');
      for (let depth = 1; depth < segments.length; depth++) {
        directories.add(`${root}/${segments.slice(0, depth).join('/')}/`);
      }
    }
    const entries: TarEntry[] = [
      ...[...directories].sort().map((name) => ({
        header: { name, type: 'directory' as const, size: 0, mode: 0o755, ...owner },
      })),
      ...files.map((file) => ({
        header: { name: `${root}/${file.name}`, size: file.content.length, mode: file.mode, ...owner },
        body: file.content,
      })),
    ];
    return packTar(entries);
  }
}

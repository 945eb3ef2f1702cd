import { notFound } from './errors.js';
import { now } from './ids.js';
import { type ArchiveFile, tarArchive } from './tar.js';

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

  archive(record: SkillVersionRecord): Buffer {
    const files: ArchiveFile[] = Object.entries(record.definition.files).map(([path, value]) =>
      typeof value === 'string'
        ? { path, content: Buffer.from(value, 'utf8') }
        : {
            path,
            content: typeof value.content === 'string' ? Buffer.from(value.content, 'utf8') : value.content,
            mode: value.mode,
          },
    );
    return tarArchive(record.definition.name, files);
  }
}

/**
 * Tensorlake has no labels or metadata, and only named sandboxes can suspend, so every statebox sandbox
 * is named, and its name carries its labels and its parent: `list({ labels })` and `get(id)` then work
 * from any process with no state of their own.
 *
 * A name is `sb-<10 random chars>` followed by fields: `-p<parent id>`, then `-k<key>-v<value>` per label,
 * keys sorted. Keys, values and the parent are escaped so that only `[a-z0-9-]` appears: lowercase
 * letters and digits stand for themselves and any other byte of their UTF-8 is `-` plus two hex digits.
 * `k`, `v` and `p` are not hex digits, so `-k`, `-v` and `-p` can never be read as an escape.
 */
import { randomBytes } from 'node:crypto';

export const NAME_PREFIX = 'sb-';
const RANDOM_LENGTH = 10;

export type DecodedName = { labels: Record<string, string>; parentId?: string };

export function randomPart(): string {
  let out = '';
  while (out.length < RANDOM_LENGTH)
    out += randomBytes(16)
      .toString('base64')
      .replace(/[^a-z0-9]/g, '');
  return out.slice(0, RANDOM_LENGTH);
}

function escapePart(text: string): string {
  let out = '';
  for (const byte of Buffer.from(text, 'utf8')) {
    const isLower = byte >= 0x61 && byte <= 0x7a;
    const isDigit = byte >= 0x30 && byte <= 0x39;
    out += isLower || isDigit ? String.fromCharCode(byte) : `-${byte.toString(16).padStart(2, '0')}`;
  }
  return out;
}

function unescapePart(text: string): string {
  const bytes: number[] = [];
  for (let index = 0; index < text.length; index += 1) {
    const char = text[index]!;
    if (char === '-') {
      const hex = text.slice(index + 1, index + 3);
      if (!/^[0-9a-f]{2}$/.test(hex)) throw new Error(`bad escape at ${index}`);
      bytes.push(Number.parseInt(hex, 16));
      index += 2;
    } else bytes.push(char.charCodeAt(0));
  }
  return Buffer.from(bytes).toString('utf8');
}

/** The name for a sandbox with these labels (and parent). The length is checked by the caller. */
export function encodeName(labels: Readonly<Record<string, string>>, parentId?: string): string {
  let name = `${NAME_PREFIX}${randomPart()}`;
  if (parentId) name += `-p${escapePart(parentId)}`;
  for (const key of Object.keys(labels).sort()) name += `-k${escapePart(key)}-v${escapePart(labels[key]!)}`;
  return name;
}

/** Labels and parent from a name; `undefined` for a name statebox did not make. */
export function decodeName(name: string | undefined | null): DecodedName | undefined {
  if (!name?.startsWith(NAME_PREFIX)) return undefined;
  const body = name.slice(NAME_PREFIX.length + RANDOM_LENGTH);
  if (!/^[a-z0-9]+$/.test(name.slice(NAME_PREFIX.length, NAME_PREFIX.length + RANDOM_LENGTH))) {
    return undefined;
  }
  // Split at the field markers: `-` followed by k, v or p (never the start of an escape).
  const fields = body.split(/-(?=[kvp])/).slice(1);
  if (body !== '' && !body.startsWith('-')) return undefined;
  const labels: Record<string, string> = {};
  let parentId: string | undefined;
  try {
    for (let index = 0; index < fields.length; index += 1) {
      const field = fields[index]!;
      const tag = field[0];
      const value = unescapePart(field.slice(1));
      if (tag === 'p' && index === 0) parentId = value;
      else if (tag === 'k' && fields[index + 1]?.[0] === 'v') {
        labels[value] = unescapePart(fields[index + 1]!.slice(1));
        index += 1;
      } else return undefined;
    }
  } catch {
    return undefined;
  }
  return parentId === undefined ? { labels } : { labels, parentId };
}

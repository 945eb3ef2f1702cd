import { randomBytes } from 'node:crypto';

const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZabcdefghijkmnopqrstuvwxyz';

/** A prefixed id in the style of the real API (`sesn_01...`, `sevt_01...`). */
export function newId(prefix: string, length = 24): string {
  const bytes = randomBytes(length);
  let out = '';
  for (const byte of bytes) out += ALPHABET[byte % ALPHABET.length];
  return `${prefix}_01${out}`;
}

/** A secret-looking key (`sk-ant-req-...`). */
export function newKey(prefix: string): string {
  return `${prefix}${randomBytes(24).toString('base64url')}`;
}

/** RFC 3339 timestamp, as every `*_at` field carries. */
export function now(): string {
  return new Date().toISOString();
}

/** Standard base64url without padding, as the work item `secret` is encoded. */
export function base64url(value: string): string {
  return Buffer.from(value, 'utf8').toString('base64url');
}

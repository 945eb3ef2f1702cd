import { randomBytes } from 'node:crypto';

/** `bytes` random bytes as lowercase hex (twice as many characters). */
export function randomHex(bytes: number): string {
  return randomBytes(bytes).toString('hex');
}

/**
 * A new random id: `prefix` then `bytes` random bytes in hex (`newId('sbx-')` is `sbx-` and 16 hex digits,
 * 64 bits: two ids of one host collide with odds of 1 in 10^19 per pair).
 */
export function newId(prefix: string, bytes = 8): string {
  return `${prefix}${randomHex(bytes)}`;
}

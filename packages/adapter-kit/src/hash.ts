import { createHash } from 'node:crypto';

/** The SHA-256 of `data` (UTF-8 for a string) as 64 lowercase hex digits, the form `sha256sum` prints. */
export function sha256(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * A minimal ustar writer: just regular files and directories, which is all the workspace generator
 * needs. GNU tar and busybox tar both read it, so the same archives feed a local sandbox and a container.
 */

const BLOCK = 512;
/** Fixed mtime (2026-01-01) so two generations of one size give byte-identical trees. */
const MTIME = 1_767_225_600;

export type TarEntry =
  | { type: 'directory'; path: string; mode?: number }
  | { type: 'file'; path: string; data: Uint8Array; mode?: number };

function writeOctal(header: Buffer, offset: number, length: number, value: number): void {
  header.write(value.toString(8).padStart(length - 1, '0'), offset, length - 1, 'ascii');
  header[offset + length - 1] = 0;
}

function headerFor(entry: TarEntry): Buffer {
  const header = Buffer.alloc(BLOCK);
  const name = entry.type === 'directory' ? `${entry.path}/` : entry.path;
  let prefix = '';
  let base = name;
  if (Buffer.byteLength(name) > 100) {
    // ustar splits long names at a slash into a 155-byte prefix and a 100-byte name.
    const cut = name.lastIndexOf('/', name.length - 2);
    prefix = name.slice(0, cut);
    base = name.slice(cut + 1);
    if (cut < 0 || Buffer.byteLength(base) > 100 || Buffer.byteLength(prefix) > 155) {
      throw new Error(`Path too long for a ustar header: ${name}`);
    }
  }
  header.write(base, 0, 100, 'utf8');
  writeOctal(header, 100, 8, entry.mode ?? (entry.type === 'directory' ? 0o755 : 0o644));
  writeOctal(header, 108, 8, 0);
  writeOctal(header, 116, 8, 0);
  writeOctal(header, 124, 12, entry.type === 'file' ? entry.data.byteLength : 0);
  writeOctal(header, 136, 12, MTIME);
  header.write('        ', 148, 8, 'ascii');
  header.write(entry.type === 'directory' ? '5' : '0', 156, 1, 'ascii');
  header.write('ustar\u000000', 257, 8, 'ascii');
  header.write('root', 265, 32, 'ascii');
  header.write('root', 297, 32, 'ascii');
  header.write(prefix, 345, 155, 'utf8');
  let checksum = 0;
  for (const byte of header) checksum += byte;
  header.write(`${checksum.toString(8).padStart(6, '0')}\u0000 `, 148, 8, 'ascii');
  return header;
}

/** One complete archive (with its two zero end blocks), so each chunk can be extracted on its own. */
export function tarArchive(entries: readonly TarEntry[]): Buffer {
  const parts: Uint8Array[] = [];
  for (const entry of entries) {
    parts.push(headerFor(entry));
    if (entry.type === 'file' && entry.data.byteLength > 0) {
      parts.push(entry.data);
      const padding = (BLOCK - (entry.data.byteLength % BLOCK)) % BLOCK;
      if (padding > 0) parts.push(Buffer.alloc(padding));
    }
  }
  parts.push(Buffer.alloc(BLOCK * 2));
  return Buffer.concat(parts);
}

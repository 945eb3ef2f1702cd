import { gunzipSync, inflateRawSync } from 'node:zlib';

export type ArchiveEntry = { path: string; data: Uint8Array; executable: boolean };

/**
 * Reads a skill archive (zip, tar or tar.gz) on the host, so extraction does not depend on the sandbox
 * having `unzip` or `tar` (a busybox image has no unzip). Only regular files are returned: symlinks,
 * hard links and devices are dropped, and an absolute member or one with `..` rejects the archive.
 */
export function readArchive(bytes: Uint8Array): ArchiveEntry[] {
  let data = bytes;
  if (data[0] === 0x1f && data[1] === 0x8b) data = gunzipSync(data);
  const entries = data[0] === 0x50 && data[1] === 0x4b ? readZip(data) : readTar(data);
  for (const entry of entries) assertSafe(entry.path);
  return entries;
}

function assertSafe(path: string): void {
  if (path.startsWith('/') || path.split('/').includes('..') || path.includes('\0')) {
    throw new Error(`unsafe archive member ${JSON.stringify(path)}`);
  }
}

function readTar(data: Uint8Array): ArchiveEntry[] {
  const entries: ArchiveEntry[] = [];
  const text = (start: number, length: number) =>
    Buffer.from(data.subarray(start, start + length))
      .toString('utf8')
      .replace(/\0.*$/s, '');
  let longName: string | undefined;
  for (let offset = 0; offset + 512 <= data.length; ) {
    if (data.subarray(offset, offset + 512).every((byte) => byte === 0)) break;
    const size = Number.parseInt(text(offset + 124, 12).trim() || '0', 8);
    const type = String.fromCharCode(data[offset + 156] ?? 48);
    const prefix = text(offset + 345, 155);
    const name = longName ?? (prefix ? `${prefix}/${text(offset, 100)}` : text(offset, 100));
    const mode = Number.parseInt(text(offset + 100, 8).trim() || '644', 8);
    const body = data.subarray(offset + 512, offset + 512 + size);
    longName = undefined;
    if (type === 'L') longName = Buffer.from(body).toString('utf8').replace(/\0.*$/s, '');
    else if (type === '0' || type === '\0') {
      entries.push({ path: name.replace(/^\.\//, ''), data: body, executable: (mode & 0o111) !== 0 });
    }
    offset += 512 + Math.ceil(size / 512) * 512;
  }
  return entries;
}

function readZip(data: Uint8Array): ArchiveEntry[] {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  let end = data.length - 22;
  while (end >= 0 && view.getUint32(end, true) !== 0x06054b50) end--;
  if (end < 0) throw new Error('not a zip archive: no end of central directory');
  const count = view.getUint16(end + 10, true);
  let offset = view.getUint32(end + 16, true);
  const entries: ArchiveEntry[] = [];
  for (let index = 0; index < count; index++) {
    const method = view.getUint16(offset + 10, true);
    const compressedSize = view.getUint32(offset + 20, true);
    const nameLength = view.getUint16(offset + 28, true);
    const extraLength = view.getUint16(offset + 30, true);
    const commentLength = view.getUint16(offset + 32, true);
    const externalAttributes = view.getUint32(offset + 38, true);
    const localOffset = view.getUint32(offset + 42, true);
    const name = Buffer.from(data.subarray(offset + 46, offset + 46 + nameLength)).toString('utf8');
    offset += 46 + nameLength + extraLength + commentLength;
    const unixMode = externalAttributes >>> 16;
    const fileType = unixMode & 0o170000;
    if (name.endsWith('/') || (fileType !== 0 && fileType !== 0o100000)) continue;
    const localNameLength = view.getUint16(localOffset + 26, true);
    const localExtraLength = view.getUint16(localOffset + 28, true);
    const start = localOffset + 30 + localNameLength + localExtraLength;
    const raw = data.subarray(start, start + compressedSize);
    const body = method === 0 ? raw : method === 8 ? inflateRawSync(raw) : undefined;
    if (!body) throw new Error(`zip member ${name} uses unsupported compression method ${method}`);
    entries.push({ path: name, data: body, executable: (unixMode & 0o111) !== 0 });
  }
  return entries;
}

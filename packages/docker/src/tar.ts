import { concatBytes } from '@statebox/core';
/**
 * The little of the tar format that the Engine's archive endpoints need: writing regular files and
 * directories (`PUT /containers/{id}/archive`), and reading the entry back from `GET .../archive`.
 * Docker's archives are ustar with PAX headers for long names, so that is what is handled.
 */

export type TarEntry = {
  /** Path inside the archive, without a leading slash. */
  name: string;
  type: 'file' | 'directory' | 'symlink' | 'other';
  mode: number;
  data: Uint8Array;
  linkName: string;
};

const BLOCK = 512;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

export type TarInput = { name: string; type: 'file' | 'directory'; mode: number; data?: Uint8Array };

export function createTar(entries: readonly TarInput[]): Uint8Array {
  const blocks: Uint8Array[] = [];
  for (const entry of entries) {
    const data = entry.data ?? new Uint8Array();
    const name = entry.type === 'directory' && !entry.name.endsWith('/') ? `${entry.name}/` : entry.name;
    if (encoder.encode(name).byteLength > 100) {
      // PAX extended header: "<length> path=<name>\n", where the length counts itself.
      const body = paxRecord('path', name);
      blocks.push(header({ name: 'PaxHeader', type: 'x', mode: 0o644, size: body.byteLength }), pad(body));
    }
    blocks.push(
      header({
        name: name.slice(0, 100),
        type: entry.type === 'directory' ? '5' : '0',
        mode: entry.mode,
        size: data.byteLength,
      }),
    );
    if (data.byteLength > 0) blocks.push(pad(data));
  }
  blocks.push(new Uint8Array(BLOCK * 2));
  return concatBytes(blocks);
}

/** Reads the first non-metadata entry of an archive. */
export function readFirstEntry(archive: Uint8Array): TarEntry | undefined {
  let offset = 0;
  let longName: string | undefined;
  let longLink: string | undefined;
  while (offset + BLOCK <= archive.byteLength) {
    const block = archive.subarray(offset, offset + BLOCK);
    if (block.every((byte) => byte === 0)) return undefined;
    const size = readOctal(block.subarray(124, 136));
    const typeFlag = String.fromCharCode(block[156]!);
    const dataStart = offset + BLOCK;
    const data = archive.subarray(dataStart, dataStart + size);
    offset = dataStart + Math.ceil(size / BLOCK) * BLOCK;
    if (typeFlag === 'x') {
      const records = parsePax(data);
      longName = records.path ?? longName;
      longLink = records.linkpath ?? longLink;
      continue;
    }
    if (typeFlag === 'g') continue;
    if (typeFlag === 'L' || typeFlag === 'K') {
      const text = decoder.decode(data).replace(/\0.*$/s, '');
      if (typeFlag === 'L') longName = text;
      else longLink = text;
      continue;
    }
    const prefix = readString(block.subarray(345, 500));
    const shortName = readString(block.subarray(0, 100));
    return {
      name: longName ?? (prefix ? `${prefix}/${shortName}` : shortName),
      type:
        typeFlag === '0' || typeFlag === '\0' || typeFlag === '7'
          ? 'file'
          : typeFlag === '5'
            ? 'directory'
            : typeFlag === '2'
              ? 'symlink'
              : 'other',
      mode: readOctal(block.subarray(100, 108)),
      data: new Uint8Array(data),
      linkName: longLink ?? readString(block.subarray(157, 257)),
    };
  }
  return undefined;
}

function header(fields: { name: string; type: string; mode: number; size: number }): Uint8Array {
  const block = new Uint8Array(BLOCK);
  block.set(encoder.encode(fields.name).subarray(0, 100), 0);
  writeOctal(block, 100, 8, fields.mode & 0o7777);
  writeOctal(block, 108, 8, 0);
  writeOctal(block, 116, 8, 0);
  writeOctal(block, 124, 12, fields.size);
  writeOctal(block, 136, 12, Math.floor(Date.now() / 1000));
  block.fill(0x20, 148, 156);
  block[156] = fields.type.charCodeAt(0);
  block.set(encoder.encode('ustar\u000000'), 257);
  let checksum = 0;
  for (const byte of block) checksum += byte;
  writeOctal(block, 148, 7, checksum);
  return block;
}

function writeOctal(block: Uint8Array, offset: number, length: number, value: number): void {
  const text = value.toString(8).padStart(length - 1, '0');
  block.set(encoder.encode(text), offset);
  block[offset + length - 1] = 0;
}

function readOctal(field: Uint8Array): number {
  // Large sizes use the base-256 form: high bit set, big-endian binary.
  if ((field[0]! & 0x80) !== 0) {
    let value = 0;
    for (let index = 1; index < field.length; index++) value = value * 256 + field[index]!;
    return value;
  }
  const text = readString(field).trim();
  return text ? Number.parseInt(text, 8) : 0;
}

function readString(field: Uint8Array): string {
  const end = field.indexOf(0);
  return decoder.decode(end === -1 ? field : field.subarray(0, end));
}

function pad(data: Uint8Array): Uint8Array {
  const padded = new Uint8Array(Math.ceil(data.byteLength / BLOCK) * BLOCK);
  padded.set(data);
  return padded;
}

function paxRecord(key: string, value: string): Uint8Array {
  const body = ` ${key}=${value}\n`;
  let length = encoder.encode(body).byteLength;
  length += String(length).length;
  if (String(length).length !== String(length - String(length).length).length) length += 1;
  return encoder.encode(`${length}${body}`);
}

function parsePax(data: Uint8Array): Record<string, string> {
  const records: Record<string, string> = {};
  let offset = 0;
  while (offset < data.byteLength) {
    const space = data.indexOf(0x20, offset);
    if (space === -1) break;
    const length = Number(decoder.decode(data.subarray(offset, space)));
    if (!Number.isFinite(length) || length <= 0) break;
    const record = decoder.decode(data.subarray(space + 1, offset + length - 1));
    const equals = record.indexOf('=');
    if (equals > 0) records[record.slice(0, equals)] = record.slice(equals + 1);
    offset += length;
  }
  return records;
}

import { describe, expect, it } from 'vitest';
import { concatBytes, OutputBuffer, truncationMarker } from '../src/output.js';

const encoder = new TextEncoder();
const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

function bufferOf(cap: number, chunks: string[]): OutputBuffer {
  const buffer = new OutputBuffer(cap);
  for (const chunk of chunks) buffer.push(encoder.encode(chunk));
  return buffer;
}

describe('OutputBuffer', () => {
  it('keeps output within the cap untouched', () => {
    const buffer = bufferOf(10, ['abc', 'defg', 'hij']);
    expect(buffer.truncated).toBe(false);
    expect(buffer.totalBytes).toBe(10);
    expect(decode(buffer.toBytes())).toBe('abcdefghij');
    expect(new OutputBuffer(4).toBytes().byteLength).toBe(0);
  });

  it('over the cap keeps the head and the tail around a marker counting what was omitted', () => {
    const buffer = bufferOf(10, ['0123456789', 'abcdefghij', 'ABCDE']);
    expect(buffer.truncated).toBe(true);
    expect(buffer.totalBytes).toBe(25);
    expect(decode(buffer.toBytes())).toBe(`01234${truncationMarker(15)}ABCDE`);
  });

  it('gives the same result whether output comes in one chunk or byte by byte', () => {
    const data = Array.from({ length: 1000 }, (_, index) => String.fromCharCode(97 + (index % 26))).join('');
    const whole = bufferOf(101, [data]);
    const bytewise = bufferOf(101, [...data]);
    expect(decode(bytewise.toBytes())).toBe(decode(whole.toBytes()));
    expect(decode(whole.toBytes())).toBe(`${data.slice(0, 51)}${truncationMarker(899)}${data.slice(-50)}`);
  });

  it('keeps the last bytes when a chunk larger than the tail arrives after small ones', () => {
    const buffer = bufferOf(8, ['ab', 'cd', 'ef', 'gh', 'ij', '0123456789']);
    expect(decode(buffer.toBytes())).toBe(`abcd${truncationMarker(12)}6789`);
  });

  it('works with a cap of one byte', () => {
    const buffer = bufferOf(1, ['xyz']);
    expect(decode(buffer.toBytes())).toBe(`x${truncationMarker(2)}`);
  });

  it('keeps binary bytes exact', () => {
    const all = Uint8Array.from({ length: 256 }, (_, index) => index);
    const buffer = new OutputBuffer(1024);
    buffer.push(all.subarray(0, 100));
    buffer.push(all.subarray(100));
    expect([...buffer.toBytes()]).toEqual([...all]);
  });

  it('has a stable marker that callers can search for', () => {
    expect(truncationMarker(42)).toBe('\n[statebox: 42 bytes of output omitted]\n');
    expect(truncationMarker(1)).toContain('[statebox: ');
  });
});

describe('concatBytes', () => {
  it('joins parts in order', () => {
    expect([...concatBytes([Uint8Array.of(1, 2), new Uint8Array(), Uint8Array.of(3)])]).toEqual([1, 2, 3]);
    expect(concatBytes([]).byteLength).toBe(0);
  });
});

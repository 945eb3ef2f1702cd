import { describe, expect, it } from 'vitest';
import { sseEvents } from '../src/sse.js';

/** A stream that delivers `bytes` in the given chunk sizes, cycling through them. */
function chunked(bytes: Uint8Array, sizes: number[]): ReadableStream<Uint8Array> {
  let offset = 0;
  let turn = 0;
  return new ReadableStream({
    pull(controller) {
      if (offset >= bytes.length) return controller.close();
      const size = sizes[turn++ % sizes.length]!;
      controller.enqueue(bytes.subarray(offset, offset + size));
      offset += size;
    },
  });
}

async function collect(stream: ReadableStream<Uint8Array>): Promise<unknown[]> {
  const events: unknown[] = [];
  for await (const event of sseEvents(stream)) events.push(event);
  return events;
}

const events = [
  { type: 'start' },
  { type: 'stdout', data: 'héllo wörld ✓ \u{1F600}' },
  { type: 'stderr', data: 'a\nb' },
  { type: 'complete', exitCode: 0 },
];
const wire = new TextEncoder().encode(
  events.map((event) => `event: message\ndata: ${JSON.stringify(event)}\n\n`).join(''),
);

describe('sseEvents', () => {
  it('yields every event whatever the chunk boundaries (inside a "\\n\\n", a character or a data line)', async () => {
    for (let size = 1; size <= 9; size++) {
      expect(await collect(chunked(wire, [size]))).toEqual(events);
    }
    expect(await collect(chunked(wire, [3, 1, 7, 2, 1, 1, 13]))).toEqual(events);
    expect(await collect(chunked(wire, [wire.length]))).toEqual(events);
  });

  it('reads an event of many megabytes sent in small chunks in linear time, intact', async () => {
    const big = 'x'.repeat(12 * 1024 * 1024);
    const bytes = new TextEncoder().encode(
      `data: ${JSON.stringify({ type: 'complete', result: { stdout: big } })}\n\ndata: {"type":"end"}\n\n`,
    );
    const started = performance.now();
    const [complete, end] = (await collect(chunked(bytes, [4096]))) as [
      { result: { stdout: string } },
      { type: string },
    ];
    expect(complete.result.stdout.length).toBe(big.length);
    expect(end).toEqual({ type: 'end' });
    // A guard on the algorithm, not a speed target: 3,072 chunks took 44 s with the quadratic reader
    // and 0.45 s with this one on this machine; the bound sits far from both.
    expect(performance.now() - started).toBeLessThan(15_000);
  });
});

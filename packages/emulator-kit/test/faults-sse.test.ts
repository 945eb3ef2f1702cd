import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { startToyVendor, TOY_KEY, type ToyVendor } from './toy-vendor.js';

let toy: ToyVendor;
const headers = { 'x-toy-key': TOY_KEY };

beforeEach(async () => {
  toy = await startToyVendor();
});

afterEach(async () => {
  await toy.close();
});

async function readUntil(reader: ReadableStreamDefaultReader<Uint8Array>, text: string): Promise<string> {
  let received = '';
  while (!received.includes(text)) {
    const chunk = await reader.read();
    if (chunk.done) throw new Error(`stream ended before ${JSON.stringify(text)}; got ${received}`);
    received += Buffer.from(chunk.value).toString('utf8');
  }
  return received;
}

describe('fault injection', () => {
  test('a 5xx answers in the vendor shape for `times` requests, then the route answers again', async () => {
    const handle = toy.server.faults.add({ method: 'GET', path: '/v1/ping', status: 503, times: 2 });
    const statuses: number[] = [];
    for (let index = 0; index < 3; index++) {
      statuses.push((await fetch(`${toy.url}/v1/ping`, { headers })).status);
    }
    expect(statuses).toEqual([503, 503, 200]);
    expect(handle.remaining).toBe(0);
    expect(toy.server.requests.entries.map((record) => record.fault)).toEqual([
      'status',
      'status',
      undefined,
    ]);
    toy.server.faults.add({ path: /ping$/, status: 500, code: 'overloaded', message: 'try later' });
    expect(await (await fetch(`${toy.url}/v1/ping`, { headers })).json()).toMatchObject({
      errors: [{ code: 'overloaded', message: 'try later' }],
    });
  });

  test('a fault acts after the route middleware, so it never hides a 401', async () => {
    const handle = toy.server.faults.add({ path: '/v1/ping', status: 500 });
    expect((await fetch(`${toy.url}/v1/ping`)).status).toBe(401);
    expect(handle.remaining).toBe(1);
    handle.cancel();
    expect((await fetch(`${toy.url}/v1/ping`, { headers })).status).toBe(200);
  });

  test('a dropped connection is a network error for the client, status 0 in the log', async () => {
    toy.server.faults.add({ path: '/v1/ping', drop: true });
    await expect(fetch(`${toy.url}/v1/ping`, { headers })).rejects.toThrow(/fetch failed/);
    const [record] = toy.server.requests.entries;
    expect(record).toMatchObject({ path: '/v1/ping', fault: 'drop', status: 0 });
    expect((await fetch(`${toy.url}/v1/ping`, { headers })).status).toBe(200);
  });

  test('a delayed request is answered after one sent later (order, not a duration)', async () => {
    toy.server.faults.add({ path: '/v1/ping', delayMs: 300 });
    const order: string[] = [];
    const slow = fetch(`${toy.url}/v1/ping`, { headers }).then(() => order.push('delayed'));
    await new Promise((resolve) => setTimeout(resolve, 20));
    await fetch(`${toy.url}/v1/echo`, { method: 'POST', headers, body: '{}' }).then(() => order.push('next'));
    await slow;
    expect(order).toEqual(['next', 'delayed']);
    expect(toy.server.requests.find('GET', '/v1/ping')[0]).toMatchObject({ fault: 'delay', status: 200 });
  });
});

describe('event streams', () => {
  test('events, comments and heartbeats arrive as they are sent; end() ends the body', async () => {
    const response = await fetch(`${toy.url}/v1/logs`, { headers });
    expect(response.headers.get('content-type')).toBe('text/event-stream');
    expect(response.headers.get('cache-control')).toBe('no-cache');
    const reader = response.body!.getReader();
    expect(await readUntil(reader, ': stream opened\n\n')).toBe(': stream opened\n\n');
    const [stream] = toy.streams;
    stream!.sendJson('log', { line: 'hello' });
    stream!.send(undefined, 'two\nlines', '7');
    const received = await readUntil(reader, 'id: 7\n\n');
    expect(received).toContain('event: log\ndata: {"line":"hello"}\n\n');
    expect(received).toContain('data: two\ndata: lines\nid: 7\n\n');
    expect(await readUntil(reader, ': heartbeat\n\n')).toContain(': heartbeat');
    stream!.end();
    while (!(await reader.read()).done) {}
    expect(toy.streams.size).toBe(0);
    expect(toy.server.requests.find('GET', '/v1/logs')[0]?.status).toBe(200);
  });

  test('drop() breaks the connection: the client sees an error, not an end', async () => {
    const response = await fetch(`${toy.url}/v1/logs`, { headers });
    const reader = response.body!.getReader();
    await readUntil(reader, ': stream opened');
    const [stream] = toy.streams;
    stream!.drop();
    await expect(
      (async () => {
        while (!(await reader.read()).done) {}
      })(),
    ).rejects.toThrow();
    expect(stream!.open).toBe(false);
  });

  test('a client that goes away closes the stream on the emulator side', async () => {
    const controller = new AbortController();
    const response = await fetch(`${toy.url}/v1/logs`, { headers, signal: controller.signal });
    await readUntil(response.body!.getReader(), ': stream opened');
    const [stream] = toy.streams;
    const closed = new Promise<void>((resolve) => stream!.onClose(resolve));
    controller.abort();
    await closed;
    expect(toy.streams.size).toBe(0);
  });
});

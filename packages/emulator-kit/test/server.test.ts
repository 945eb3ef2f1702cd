import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { createEmulatorServer, isLoopbackHost } from '../src/index.js';
import { startToyVendor, TOY_KEY, type ToyVendor } from './toy-vendor.js';

let toy: ToyVendor;
const headers = { 'x-toy-key': TOY_KEY };

beforeEach(async () => {
  toy = await startToyVendor();
});

afterEach(async () => {
  await toy.close();
});

describe('listening', () => {
  test('binds 127.0.0.1 on a free port by default', () => {
    expect(toy.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(toy.url).not.toMatch(/:0$/);
  });

  test('refuses a non-loopback address, saying why', async () => {
    const server = createEmulatorServer({ name: 'toy' });
    await expect(server.listen({ host: '0.0.0.0' })).rejects.toThrow(
      /toy emulator: refusing to listen on 0\.0\.0\.0: emulators bind loopback only/,
    );
    await expect(server.listen({ host: '::' })).rejects.toThrow(/refusing to listen on ::/);
    expect(isLoopbackHost('127.0.0.2')).toBe(true);
    expect(isLoopbackHost('::1')).toBe(true);
    expect(isLoopbackHost('localhost')).toBe(true);
    expect(isLoopbackHost('10.0.0.1')).toBe(false);
    expect(isLoopbackHost('example.com')).toBe(false);
  });
});

describe('routes, errors and the request log', () => {
  test('a route answers, and the log records it with the route and the vendor fields', async () => {
    const response = await fetch(`${toy.url}/v1/ping`, { headers });
    expect(await response.json()).toEqual({ pong: true, caller: 'user' });
    expect(toy.server.requests.entries).toEqual([
      {
        requestId: expect.stringMatching(/^req-/),
        method: 'GET',
        path: '/v1/ping',
        route: 'GET /v1/ping',
        status: 200,
        key: TOY_KEY,
      },
    ]);
    expect(toy.server.requests.find('GET', /ping$/)).toHaveLength(1);
  });

  test('errors come in the vendor shape, with its retry header', async () => {
    const unauthorised = await fetch(`${toy.url}/v1/ping`);
    expect(unauthorised.status).toBe(401);
    expect(await unauthorised.json()).toEqual({
      success: false,
      errors: [{ code: 'unauthorized', message: 'bad key' }],
      requestId: expect.stringMatching(/^req-/),
    });
    const crash = await fetch(`${toy.url}/v1/crash`, { headers });
    expect(crash.status).toBe(500);
    expect(await crash.json()).toMatchObject({
      errors: [{ code: 'internal_error', message: 'emulator bug: something broke' }],
    });
  });

  test('an unknown route fails loudly: 501, not retryable, in the log and in `unhandled`', async () => {
    const response = await fetch(`${toy.url}/v2/brand-new-endpoint`, { method: 'PATCH', headers });
    expect(response.status).toBe(501);
    expect(response.headers.get('x-should-retry')).toBe('false');
    const body = (await response.json()) as { errors: Array<{ code: string; message: string }> };
    expect(body.errors[0]).toEqual({
      code: 'not_implemented',
      message: expect.stringContaining('the toy emulator does not implement PATCH /v2/brand-new-endpoint'),
    });
    // A known path with an unknown method is just as unknown.
    expect((await fetch(`${toy.url}/v1/ping`, { method: 'DELETE', headers })).status).toBe(501);
    expect(toy.server.unhandled.map((record) => `${record.method} ${record.path}`)).toEqual([
      'PATCH /v2/brand-new-endpoint',
      'DELETE /v1/ping',
    ]);
  });

  test('JSON bodies: malformed is a 400, oversized a 413', async () => {
    const post = (body: string) => fetch(`${toy.url}/v1/echo`, { method: 'POST', headers, body });
    expect(await (await post('{"a":1}')).json()).toEqual({ a: 1 });
    const malformed = await post('{"a":');
    expect(malformed.status).toBe(400);
    expect(await malformed.json()).toMatchObject({ errors: [{ code: 'invalid_json' }] });
    const array = await post('[1]');
    expect(await array.json()).toMatchObject({
      errors: [{ code: 'invalid_json', message: 'request body must be a JSON object' }],
    });
    const large = await post(JSON.stringify({ text: 'x'.repeat(100) }));
    expect(large.status).toBe(413);
    expect(await large.json()).toMatchObject({
      errors: [{ code: 'request_too_large', message: 'request body exceeds 64 bytes' }],
    });
  });

  test('routes lists what the emulator implements', () => {
    expect(toy.server.routes).toContain('POST /v1/sandboxes/:id/exec');
  });
});

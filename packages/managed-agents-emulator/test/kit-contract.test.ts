import Anthropic from '@anthropic-ai/sdk';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type StateboxEmulator, startEmulator } from '../src/index.js';
import { appClient } from './helpers.js';

let emulator: StateboxEmulator;
let app: Anthropic;

beforeEach(async () => {
  emulator = await startEmulator();
  app = appClient(emulator.url, emulator.apiKey);
});

afterEach(async () => {
  await emulator.close();
});

describe('what the emulator kit adds, through the real SDK', () => {
  it('an endpoint the emulator lacks is a 501 the SDK does not retry, listed in `unhandled`', async () => {
    const agentId = emulator.createAgent();
    const error = await app.beta.agents.update(agentId, { version: 1, name: 'renamed' }).catch((e) => e);
    expect(error).toBeInstanceOf(Anthropic.APIError);
    expect(error.status).toBe(501);
    expect(error.error).toMatchObject({
      type: 'error',
      error: {
        type: 'api_error',
        message: expect.stringContaining(`does not implement POST /v1/agents/${agentId}`),
      },
    });
    expect(emulator.unhandled).toHaveLength(1);
    expect(emulator.unhandled[0]).toMatchObject({ method: 'POST', status: 501, route: null });
  });

  it('requests are logged with the route that answered them and the credential kind', async () => {
    await app.beta.agents.list();
    expect(emulator.requests.at(-1)).toMatchObject({
      method: 'GET',
      path: '/v1/agents',
      route: 'GET /v1/agents',
      status: 200,
      principal: 'api',
      requestId: expect.stringMatching(/^req_/),
    });
  });

  it('http faults: the SDK retries a 503 and a dropped connection, and then succeeds', async () => {
    emulator.faults.http({ method: 'GET', path: '/v1/agents', status: 503 });
    emulator.faults.http({ method: 'GET', path: '/v1/agents', drop: true });
    const page = await app.beta.agents.list();
    expect(page.data).toEqual([]);
    const attempts = emulator.requests.filter((request) => request.path === '/v1/agents');
    expect(attempts.map((request) => [request.fault, request.status])).toEqual([
      ['status', 503],
      ['drop', 0],
      [undefined, 200],
    ]);
  });
});

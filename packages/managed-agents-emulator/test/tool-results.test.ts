import Anthropic from '@anthropic-ai/sdk';
import { SessionToolRunner, WorkPoller } from '@anthropic-ai/sdk/helpers/beta/environments';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type StateboxEmulator, startEmulator } from '../src/index.js';
import { appClient, decodeSecret, tool, untilType, workerClient } from './helpers.js';

let emulator: StateboxEmulator;

beforeEach(async () => {
  emulator = await startEmulator({
    leaseTtlSeconds: 5,
    transcripts: [
      {
        name: 'lookup',
        match: 'lookup',
        steps: [
          {
            type: 'tool_use',
            name: 'lookup',
            custom: true,
            input: { key: 'k' },
            expect: { equals: 'value of k' },
          },
        ],
      },
      {
        name: 'three-commands',
        match: 'three',
        steps: [1, 2, 3].map((n) => ({
          type: 'tool_use' as const,
          name: 'bash',
          input: { command: `echo ${n}` },
          expect: { equals: String(n) },
        })),
      },
    ],
  });
});

afterEach(async () => {
  await emulator.close();
});

/** Claim the session's work item with the SDK poller and return a client holding its sessions token. */
async function claim(environment: { id: string; environmentKey: string }) {
  const worker = workerClient(emulator.url, environment.environmentKey);
  const poller = new WorkPoller({
    client: worker,
    environmentId: environment.id,
    environmentKey: environment.environmentKey,
    blockMs: 50,
    autoStop: false,
  });
  for await (const work of poller) {
    return { work, client: workerClient(emulator.url, decodeSecret(work.secret!).sessions_token) };
  }
  throw new Error('poller ended without an item');
}

describe('tool results', () => {
  it('answers agent.custom_tool_use with user.custom_tool_result through SessionToolRunner', async () => {
    const environment = emulator.createEnvironment('custom');
    const sessionId = emulator.createSession({ environmentId: environment.id });
    const { client } = await claim(environment);
    const runner = new SessionToolRunner(sessionId, {
      client,
      tools: [tool('lookup', (input) => `value of ${String(input.key)}`)],
      maxIdleMs: 100,
    });
    emulator.sendMessage(sessionId, 'lookup k');
    for await (const call of runner) expect(call.event.type).toBe('agent.custom_tool_use');
    const report = await emulator.waitForTurns(sessionId);
    expect(report.steps[0]).toMatchObject({ custom: true, content: 'value of k', pass: true });
    const history = await client.beta.sessions.events.list(sessionId, { types: ['user.custom_tool_result'] });
    expect(history.data).toHaveLength(1);
  });

  it('reconnects after dropped streams and reconciles without answering anything twice', async () => {
    const environment = emulator.createEnvironment('drops');
    const sessionId = emulator.createSession({ environmentId: environment.id });
    const { client } = await claim(environment);
    let calls = 0;
    const runner = new SessionToolRunner(sessionId, {
      client,
      tools: [
        tool('bash', (input) => {
          calls += 1;
          // Drop the stream while this call runs: the next tool_use is emitted during the disconnect and can
          // only be found by the reconcile pass after the reconnect.
          if (calls === 1) expect(emulator.faults.dropStreams(sessionId)).toBe(1);
          return String(input.command).replace('echo ', '');
        }),
      ],
      maxIdleMs: 100,
    });
    emulator.sendMessage(sessionId, 'three');
    for await (const _ of runner) {
    }
    const report = await emulator.waitForTurns(sessionId);
    expect(report.passed).toBe(true);
    expect(calls).toBe(3);
    expect(Object.values(report.answers)).toEqual([1, 1, 1]);
    expect(report.rejectedAnswers).toEqual([]);
    const streams = emulator.requests.filter((r) => r.path.endsWith('/events/stream'));
    expect(streams.length).toBeGreaterThanOrEqual(2);
  });

  it('survives sends failing with 500 and 529 (the SDK retries) and still answers once', async () => {
    const environment = emulator.createEnvironment('flaky');
    const sessionId = emulator.createSession({ environmentId: environment.id });
    const { client } = await claim(environment);
    const runner = new SessionToolRunner(sessionId, {
      client,
      tools: [
        tool('bash', (input) => {
          if (input.command !== 'echo 3')
            emulator.faults.failSends(sessionId, 1, input.command === 'echo 2' ? 529 : 500);
          return String(input.command).replace('echo ', '');
        }),
      ],
      maxIdleMs: 100,
    });
    emulator.sendMessage(sessionId, 'three');
    for await (const _ of runner) {
    }
    const report = await emulator.waitForTurns(sessionId);
    expect(report.passed).toBe(true);
    expect(Object.values(report.answers)).toEqual([1, 1, 1]);
    expect(emulator.requests.filter((r) => r.status === 529)).toHaveLength(1);
    expect(emulator.requests.filter((r) => r.status === 500)).toHaveLength(1);
  });

  it('rejects the wrong result type, unknown ids and a second answer with 400', async () => {
    const app = appClient(emulator.url, emulator.apiKey);
    const environment = emulator.createEnvironment('pairing');
    const sessionId = emulator.createSession({ environmentId: environment.id });
    const stream = await app.beta.sessions.events.stream(sessionId);
    const events = stream[Symbol.asyncIterator]();
    emulator.sendMessage(sessionId, 'lookup k');
    const call = await untilType(events, 'agent.custom_tool_use');
    const send = (event: Record<string, unknown>) =>
      app.beta.sessions.events.send(sessionId, { events: [event] as never }).catch((e: unknown) => e);

    const wrong = await send({ type: 'user.tool_result', tool_use_id: call.id, content: [] });
    expect(wrong).toBeInstanceOf(Anthropic.BadRequestError);
    expect(String((wrong as Error).message)).toContain('answer it with user.custom_tool_result');
    expect(
      await send({ type: 'user.custom_tool_result', custom_tool_use_id: 'sevt_unknown' }),
    ).toBeInstanceOf(Anthropic.BadRequestError);
    const right = await send({
      type: 'user.custom_tool_result',
      custom_tool_use_id: call.id,
      content: [{ type: 'text', text: 'value of k' }],
    });
    expect(right).not.toBeInstanceOf(Error);
    expect(
      await send({ type: 'user.custom_tool_result', custom_tool_use_id: call.id, content: [] }),
    ).toBeInstanceOf(Anthropic.BadRequestError);
    stream.controller.abort();

    const report = await emulator.waitForTurns(sessionId);
    expect(report.passed).toBe(true);
    expect(report.answers[call.id]).toBe(3);
    expect(report.acceptedAnswers[call.id]).toBe(1);
    expect(report.rejectedAnswers.map((r) => r.reason)).toEqual([
      `${call.id} is an agent.custom_tool_use; answer it with user.custom_tool_result`,
      'no agent.custom_tool_use sevt_unknown in this session',
      `${call.id} has already been answered`,
    ]);
  });

  it('scopes a sessions token to its own session', async () => {
    const environment = emulator.createEnvironment('scoped');
    const first = emulator.createSession({ environmentId: environment.id });
    const second = emulator.createSession({ environmentId: environment.id });
    const { work, client } = await claim(environment);
    const own = work.data.id;
    const other = own === first ? second : first;
    expect((await client.beta.sessions.retrieve(own)).id).toBe(own);
    await expect(client.beta.sessions.retrieve(other)).rejects.toBeInstanceOf(
      Anthropic.PermissionDeniedError,
    );
    await expect(client.beta.sessions.events.list(other)).rejects.toBeInstanceOf(
      Anthropic.PermissionDeniedError,
    );
    await expect(
      client.beta.sessions.events.send(other, {
        events: [{ type: 'user.message', content: [{ type: 'text', text: 'x' }] }],
      }),
    ).rejects.toBeInstanceOf(Anthropic.PermissionDeniedError);
  });

  it('requeues the work of a session whose worker failed when the app sends user.interrupt', async () => {
    const app = appClient(emulator.url, emulator.apiKey);
    const environment = emulator.createEnvironment('interrupt');
    const sessionId = emulator.createSession({ environmentId: environment.id, message: 'lookup k' });
    const { work, client } = await claim(environment);
    const pending = async () =>
      (await app.beta.sessions.events.list(sessionId, { types: ['agent.custom_tool_use'] })).data.length > 0;
    while (!(await pending())) await new Promise((resolve) => setTimeout(resolve, 10));
    await client.beta.environments.work.stop(work.id, { environment_id: environment.id, force: true });
    await app.beta.sessions.events.send(sessionId, { events: [{ type: 'user.interrupt' }] });
    const report = await emulator.waitForTurns(sessionId);
    expect(report.turns[0]).toMatchObject({ interrupted: true });
    expect(report.steps[0]).toMatchObject({ unanswered: true, pass: false });
    expect(report.workItems.map((w) => w.state)).toEqual(['stopped', 'queued']);
  });
});

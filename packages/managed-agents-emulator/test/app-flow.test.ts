import Anthropic from '@anthropic-ai/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type StateboxEmulator, startEmulator } from '../src/index.js';
import { appClient, until, workerClient } from './helpers.js';

let emulator: StateboxEmulator;
let app: Anthropic;

beforeAll(async () => {
  emulator = await startEmulator({
    transcripts: [
      {
        name: 'list-files',
        match: 'list',
        steps: [{ type: 'tool_use', name: 'bash', input: { command: 'ls' } }],
      },
      { name: 'greeting', match: 'hello', steps: [{ type: 'message', text: 'hi there' }] },
    ],
  });
  app = appClient(emulator.url, emulator.apiKey);
});

afterAll(async () => {
  await emulator.close();
});

async function newSession(metadata?: Record<string, string>) {
  const environment = await app.beta.environments.create({ name: 'app', config: { type: 'self_hosted' } });
  const agent = await app.beta.agents.create({
    name: 'coder',
    model: 'claude-sonnet-4-6',
    system: 'be brief',
    tools: [{ type: 'agent_toolset_20260401' }],
    skills: [{ type: 'custom', skill_id: 'skill_x', version: 'latest' }],
  });
  const session = await app.beta.sessions.create({
    agent: agent.id,
    environment_id: environment.id,
    title: 'app flow',
    ...(metadata ? { metadata } : {}),
  });
  return { environment, agent, session };
}

describe('app side through the real SDK', () => {
  it('streams the scripted tool_use after a user.message, then requires_action', async () => {
    const { session, agent } = await newSession();
    expect(session).toMatchObject({ type: 'session', status: 'idle', title: 'app flow' });
    expect(session.agent).toMatchObject({
      id: agent.id,
      system: 'be brief',
      skills: [{ type: 'custom', skill_id: 'skill_x', version: 'latest' }],
    });

    const stream = await app.beta.sessions.events.stream(session.id);
    const events = stream[Symbol.asyncIterator]();
    const sent = await app.beta.sessions.events.send(session.id, {
      events: [{ type: 'user.message', content: [{ type: 'text', text: 'list the files' }] }],
    });
    expect(sent.data?.[0]).toMatchObject({ type: 'user.message', id: expect.stringMatching(/^sevt_/) });
    expect(sent.data?.[0]?.processed_at).toBeTruthy();

    const seen: string[] = [];
    const toolUse = await until(
      events,
      (event): event is Extract<typeof event, { type: 'agent.tool_use' }> => {
        seen.push(event.type);
        return event.type === 'agent.tool_use';
      },
    );
    expect(seen).toEqual(['user.message', 'session.status_running', 'agent.tool_use']);
    expect(toolUse).toMatchObject({ name: 'bash', input: { command: 'ls' }, evaluated_permission: 'allow' });
    const idle = await events.next();
    expect(idle.value).toMatchObject({
      type: 'session.status_idle',
      stop_reason: { type: 'requires_action', event_ids: [toolUse.id] },
    });
    expect((await app.beta.sessions.retrieve(session.id)).status).toBe('idle');

    await app.beta.sessions.events.send(session.id, {
      events: [
        { type: 'user.tool_result', tool_use_id: toolUse.id, content: [{ type: 'text', text: 'a b' }] },
      ],
    });
    const end = await until(events, (event) => event.type === 'session.status_idle');
    expect(end).toMatchObject({ stop_reason: { type: 'end_turn' } });
    stream.controller.abort();

    const report = emulator.report(session.id);
    expect(report.steps[0]).toMatchObject({ name: 'bash', content: 'a b', isError: false, pass: true });
  });

  it('lists history with order, types and page cursors', async () => {
    const { session } = await newSession();
    emulator.sendMessage(session.id, 'hello');
    await emulator.waitForTurns(session.id);
    const all = [];
    for await (const event of app.beta.sessions.events.list(session.id, { limit: 2 })) all.push(event.type);
    expect(all).toEqual([
      'user.message',
      'session.status_running',
      'agent.message',
      'agent.message',
      'session.status_idle',
    ]);
    const desc = await app.beta.sessions.events.list(session.id, { order: 'desc', limit: 1 });
    expect(desc.data.map((e) => e.type)).toEqual(['session.status_idle']);
    const messages = await app.beta.sessions.events.list(session.id, { types: ['agent.message'] });
    expect(messages.data.map((e) => e.type)).toEqual(['agent.message', 'agent.message']);
  });

  it('pins a transcript with session metadata', async () => {
    const { session } = await newSession({ 'emulator.transcript': 'greeting' });
    emulator.sendMessage(session.id, 'list files please');
    const report = await emulator.waitForTurns(session.id);
    expect(report.turns[0]?.transcript).toBe('greeting');
    expect(report.passed).toBe(true);
  });

  it('updates, lists, archives and deletes sessions', async () => {
    const { session } = await newSession({ a: '1' });
    const updated = await app.beta.sessions.update(session.id, { metadata: { a: null, b: '2' } });
    expect(updated.metadata).toEqual({ b: '2' });
    const ids = [];
    for await (const s of app.beta.sessions.list()) ids.push(s.id);
    expect(ids).toContain(session.id);

    const stream = await app.beta.sessions.events.stream(session.id);
    const events = stream[Symbol.asyncIterator]();
    const archived = await app.beta.sessions.archive(session.id);
    expect(archived.status).toBe('terminated');
    expect((await events.next()).value).toMatchObject({ type: 'session.status_terminated' });
    expect((await events.next()).done).toBe(true);

    const deleted = await app.beta.sessions.delete(session.id);
    expect(deleted).toMatchObject({ id: session.id });
    await expect(app.beta.sessions.retrieve(session.id)).rejects.toBeInstanceOf(Anthropic.NotFoundError);
  });

  it('rejects non-memory resources on a self-hosted environment with the documented 400', async () => {
    const { environment, agent } = await newSession();
    const error = await app.beta.sessions
      .create({
        agent: agent.id,
        environment_id: environment.id,
        resources: [{ type: 'file', file_id: 'file_1' }],
      })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Anthropic.BadRequestError);
    expect((error as InstanceType<typeof Anthropic.BadRequestError>).message).toContain(
      `Environment ${environment.id} is a self-hosted environment. \`resources\` are not supported with self-hosted environments.`,
    );
  });

  it('enforces credentials: wrong keys, and x-api-key with Bearer on per-session endpoints', async () => {
    const { session, environment } = await newSession();
    const wrong = appClient(emulator.url, 'sk-ant-api03-wrong');
    await expect(wrong.beta.agents.list()).rejects.toBeInstanceOf(Anthropic.AuthenticationError);
    await expect(
      workerClient(emulator.url, 'sk-ant-oat01-wrong').beta.sessions.retrieve(session.id),
    ).rejects.toBeInstanceOf(Anthropic.AuthenticationError);
    const dual = await fetch(`${emulator.url}/v1/sessions/${session.id}/events`, {
      headers: { 'x-api-key': emulator.apiKey, authorization: `Bearer ${emulator.apiKey}` },
    });
    expect(dual.status).toBe(401);
    expect(await dual.json()).toMatchObject({ type: 'error', error: { type: 'authentication_error' } });
    const viaHeader = await fetch(`${emulator.url}/v1/sessions/${session.id}`, {
      headers: { 'x-api-key': emulator.apiKey },
    });
    expect(viaHeader.status).toBe(200);
    const key = (environment as unknown as { emulator_environment_key: string }).emulator_environment_key;
    expect(key).toMatch(/^sk-ant-oat01-/);
    const asWorker = workerClient(emulator.url, key);
    expect((await asWorker.beta.sessions.retrieve(session.id)).id).toBe(session.id);
    await expect(asWorker.beta.agents.list()).rejects.toBeInstanceOf(Anthropic.PermissionDeniedError);
  });
});

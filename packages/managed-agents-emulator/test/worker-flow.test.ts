import { SessionToolRunner, WorkPoller } from '@anthropic-ai/sdk/helpers/beta/environments';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type StateboxEmulator, startEmulator } from '../src/index.js';
import { appClient, decodeSecret, tool, workerClient } from './helpers.js';

let emulator: StateboxEmulator;

beforeEach(async () => {
  emulator = await startEmulator({
    leaseTtlSeconds: 5,
    transcripts: [
      {
        name: 'echo',
        match: 'echo',
        steps: [
          { type: 'thinking' },
          {
            type: 'tool_use',
            name: 'bash',
            input: { command: 'echo hi' },
            expect: { contains: 'hi', isError: false },
          },
          { type: 'message', text: 'ran it' },
          {
            type: 'tool_use',
            name: 'read',
            input: { file_path: '/x' },
            expect: { equals: 'contents of /x' },
          },
        ],
      },
    ],
  });
});

afterEach(async () => {
  await emulator.close();
});

const tools = [
  tool('bash', (input) => `${String(input.command).replace(/^echo /, '')}\n`),
  tool('read', (input) => `contents of ${String(input.file_path)}`),
];

describe('worker flow with the SDK WorkPoller and SessionToolRunner', () => {
  it('claims the work item, answers every tool call once, and the transcript passes', async () => {
    const app = appClient(emulator.url, emulator.apiKey);
    const environment = emulator.createEnvironment('worker-flow');
    const agent = await app.beta.agents.create({ name: 'a', model: 'claude-sonnet-4-6' });
    const session = await app.beta.sessions.create({ agent: agent.id, environment_id: environment.id });

    const worker = workerClient(emulator.url, environment.environmentKey);
    const poller = new WorkPoller({
      client: worker,
      environmentId: environment.id,
      environmentKey: environment.environmentKey,
      blockMs: 50,
      autoStop: false,
    });
    let claimed: Awaited<ReturnType<typeof worker.beta.environments.work.ack>> | undefined;
    for await (const work of poller) {
      claimed = work;
      break;
    }
    expect(claimed?.data).toEqual({ type: 'session', id: session.id });
    const { sessions_token } = decodeSecret(claimed!.secret!);
    expect(sessions_token).toMatch(/^sk-ant-req-/);

    const sessionClient = workerClient(emulator.url, sessions_token);
    const beat = await sessionClient.beta.environments.work.heartbeat(claimed!.id, {
      environment_id: environment.id,
      expected_last_heartbeat: 'NO_HEARTBEAT',
    });
    expect(beat).toMatchObject({
      type: 'work_heartbeat',
      state: 'active',
      lease_extended: true,
      ttl_seconds: 5,
    });

    const runner = new SessionToolRunner(session.id, { client: sessionClient, tools, maxIdleMs: 200 });
    await app.beta.sessions.events.send(session.id, {
      events: [{ type: 'user.message', content: [{ type: 'text', text: 'please echo' }] }],
    });
    const dispatched: string[] = [];
    for await (const call of runner) dispatched.push(call.name);
    expect(dispatched).toEqual(['bash', 'read']);

    const report = await emulator.waitForTurns(session.id);
    expect(report.passed).toBe(true);
    expect(report.steps.map((s) => [s.type, s.pass])).toEqual([
      ['thinking', true],
      ['tool_use', true],
      ['message', true],
      ['tool_use', true],
    ]);
    expect(Object.values(report.answers)).toEqual([1, 1]);
    await worker.beta.environments.work.stop(claimed!.id, { environment_id: environment.id, force: true });
    expect(emulator.workItems(session.id)).toMatchObject([{ state: 'stopped' }]);
  });
});

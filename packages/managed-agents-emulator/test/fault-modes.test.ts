import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadTranscripts, type StateboxEmulator, startEmulator } from '../src/index.js';
import { workerClient } from './helpers.js';

let emulator: StateboxEmulator;

beforeEach(async () => {
  emulator = await startEmulator({ leaseTtlSeconds: 2 });
});

afterEach(async () => {
  await emulator.close();
});

describe('fault modes for exactly-once tests', () => {
  it('duplicate and healthcheck items reach a poller as the API shapes them', async () => {
    const environment = emulator.createEnvironment('dupes');
    const sessionId = emulator.createSession({ environmentId: environment.id });
    const duplicate = emulator.faults.duplicateWork(sessionId);
    const healthcheck = emulator.faults.healthcheck(environment.id);
    const client = workerClient(emulator.url, environment.environmentKey);
    const seen = [];
    for (let i = 0; i < 3; i++) {
      const item = await client.beta.environments.work.poll(environment.id, {});
      expect(item).not.toBeNull();
      await client.beta.environments.work.ack(item!.id, { environment_id: environment.id });
      seen.push({ id: item!.id, data: item!.data });
    }
    expect(seen.filter((item) => item.data.id === sessionId)).toHaveLength(2);
    expect(seen.find((item) => item.id === duplicate)?.data).toEqual({ type: 'session', id: sessionId });
    expect(seen.find((item) => item.id === healthcheck)?.data).toMatchObject({ type: 'healthcheck' });
    const live = [];
    for await (const item of client.beta.environments.work.list(environment.id)) live.push(item);
    expect(live.filter((item) => item.data.id === sessionId && item.state !== 'stopped')).toHaveLength(2);
  });

  it('expireLease re-delivers the same item and the old holder gets 412', async () => {
    const environment = emulator.createEnvironment('expire');
    emulator.createSession({ environmentId: environment.id });
    const client = workerClient(emulator.url, environment.environmentKey);
    const item = (await client.beta.environments.work.poll(environment.id, {}))!;
    await client.beta.environments.work.ack(item.id, { environment_id: environment.id });
    const beat = await client.beta.environments.work.heartbeat(item.id, {
      environment_id: environment.id,
      expected_last_heartbeat: 'NO_HEARTBEAT',
    });
    emulator.faults.expireLease(item.id);
    const again = await client.beta.environments.work.poll(environment.id, {});
    expect(again?.id).toBe(item.id);
    expect(again?.latest_heartbeat_at).not.toBeNull();
    await expect(
      client.beta.environments.work.heartbeat(
        item.id,
        { environment_id: environment.id, expected_last_heartbeat: beat.last_heartbeat },
        { maxRetries: 0 },
      ),
    ).rejects.toMatchObject({ status: 412 });
  });

  it('session.error and several calls pending in one turn show on the session', async () => {
    emulator.addTranscript({
      name: 'fan',
      steps: [
        {
          type: 'tool_uses',
          calls: [
            { type: 'tool_use', name: 'bash', input: { command: 'a' } },
            { type: 'tool_use', name: 'bash', input: { command: 'b' } },
          ],
        },
      ],
    });
    const environment = emulator.createEnvironment('fan');
    const sessionId = emulator.createSession({ environmentId: environment.id, message: 'go' });
    emulator.faults.sessionError(sessionId, 'overloaded for a moment');
    const client = workerClient(emulator.url, environment.environmentKey);
    let idle: { stop_reason?: { event_ids?: string[] } } | undefined;
    for (let i = 0; i < 50 && !idle; i++) {
      const page = await client.beta.sessions.events.list(sessionId, { types: ['session.status_idle'] });
      idle = page.data[0] as typeof idle;
      if (!idle) await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(idle?.stop_reason?.event_ids).toHaveLength(2);
    const errors = await client.beta.sessions.events.list(sessionId, { types: ['session.error'] });
    expect(errors.data[0]).toMatchObject({ error: { message: 'overloaded for a moment' } });
    for (const id of idle!.stop_reason!.event_ids!) {
      await client.beta.sessions.events.send(sessionId, {
        events: [{ type: 'user.tool_result', tool_use_id: id, content: [{ type: 'text', text: 'ok' }] }],
      });
    }
    const report = await emulator.waitForTurns(sessionId, 1, 5_000);
    expect(report.steps.map((step) => step.content)).toEqual(['ok', 'ok']);
  });

  it('loadTranscripts reads arrays and names the file of a bad transcript', async () => {
    const directory = await mkdtemp(join(tmpdir(), 'statebox-transcripts-'));
    try {
      await writeFile(
        join(directory, 'a.json'),
        JSON.stringify([
          { name: 'one', steps: [] },
          { name: 'two', steps: [] },
        ]),
      );
      expect((await loadTranscripts(directory)).map((t) => t.name)).toEqual(['one', 'two']);
      await writeFile(
        join(directory, 'b.json'),
        JSON.stringify([{ name: 'three', steps: [{ type: 'oops' }] }]),
      );
      await expect(loadTranscripts(directory)).rejects.toThrow(
        `${join(directory, 'b.json')}[0]: steps[0].type`,
      );
      await writeFile(join(directory, 'b.json'), '{ not json');
      await expect(loadTranscripts(directory)).rejects.toThrow('b.json: not valid JSON');
      await expect(loadTranscripts(join(directory, 'missing'))).rejects.toThrow('not a directory');
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });
});

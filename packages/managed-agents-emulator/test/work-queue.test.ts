import Anthropic from '@anthropic-ai/sdk';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type StateboxEmulator, startEmulator } from '../src/index.js';
import { appClient, decodeSecret, workerClient } from './helpers.js';

let emulator: StateboxEmulator;

beforeEach(async () => {
  emulator = await startEmulator({
    leaseTtlSeconds: 1,
    transcripts: [{ name: 'chat', steps: [{ type: 'message', text: 'ok' }] }],
  });
});

afterEach(async () => {
  await emulator.close();
});

function setup() {
  const environment = emulator.createEnvironment('queue');
  const worker = workerClient(emulator.url, environment.environmentKey);
  const work = worker.beta.environments.work;
  const poll = (workerId = 'worker-a') =>
    work.poll(environment.id, { block_ms: 20, reclaim_older_than_ms: 50, 'Anthropic-Worker-ID': workerId });
  return { environment, worker, work, poll };
}

describe('work queue', () => {
  it('answers 204 with no body when the queue is empty, after blocking for block_ms', async () => {
    const { environment, poll } = setup();
    expect(await poll()).toBeNull();
    const raw = await fetch(`${emulator.url}/v1/environments/${environment.id}/work/poll?block_ms=30`, {
      headers: { authorization: `Bearer ${environment.environmentKey}` },
    });
    expect(raw.status).toBe(204);
    expect(await raw.text()).toBe('');
    const bad = await fetch(`${emulator.url}/v1/environments/${environment.id}/work/poll?block_ms=1000`, {
      headers: { authorization: `Bearer ${environment.environmentKey}` },
    });
    expect(bad.status).toBe(400);
    expect(emulator.requests.some((r) => r.workerId === 'worker-a')).toBe(true);
  });

  it('wakes a blocked poll when a session is created', async () => {
    const { environment, work } = setup();
    const polled = work.poll(environment.id, { block_ms: 999 });
    const sessionId = emulator.createSession({ environmentId: environment.id });
    const item = await polled;
    expect(item).toMatchObject({ type: 'work', state: 'queued', data: { type: 'session', id: sessionId } });
    expect(decodeSecret(item!.secret!)).toMatchObject({ api_base_url: emulator.url });
  });

  it('walks queued → starting → active and answers a stale heartbeat with 412', async () => {
    const { environment, work, poll } = setup();
    emulator.createSession({ environmentId: environment.id });
    const item = (await poll())!;
    const acked = await work.ack(item.id, { environment_id: environment.id });
    expect(acked).toMatchObject({ state: 'starting', secret: null });
    expect(acked.acknowledged_at).toBeTruthy();

    const first = await work.heartbeat(item.id, {
      environment_id: environment.id,
      expected_last_heartbeat: 'NO_HEARTBEAT',
      desired_ttl_seconds: 2,
    });
    expect(first).toMatchObject({
      type: 'work_heartbeat',
      state: 'active',
      lease_extended: true,
      ttl_seconds: 2,
    });

    const conflict = await work
      .heartbeat(item.id, { environment_id: environment.id, expected_last_heartbeat: 'NO_HEARTBEAT' })
      .catch((e: unknown) => e);
    expect(conflict).toBeInstanceOf(Anthropic.PreconditionFailedError);
    const error = conflict as InstanceType<typeof Anthropic.PreconditionFailedError>;
    expect(error.status).toBe(412);
    expect(error.errorCode).toBe('heartbeat_precondition_failed');
    expect(error.details).toMatchObject({
      current_state: { state: 'active', last_heartbeat: first.last_heartbeat },
    });

    const second = await work.heartbeat(item.id, {
      environment_id: environment.id,
      expected_last_heartbeat: first.last_heartbeat,
    });
    expect(second.lease_extended).toBe(true);

    emulator.faults.stealLease(item.id);
    await expect(
      work.heartbeat(item.id, {
        environment_id: environment.id,
        expected_last_heartbeat: second.last_heartbeat,
      }),
    ).rejects.toBeInstanceOf(Anthropic.PreconditionFailedError);
  });

  it('makes an item whose lease lapsed reclaimable by a new poll', async () => {
    const { environment, work, poll } = setup();
    emulator.createSession({ environmentId: environment.id });
    const item = (await poll('worker-a'))!;
    await work.ack(item.id, { environment_id: environment.id });
    const beat = await work.heartbeat(item.id, {
      environment_id: environment.id,
      expected_last_heartbeat: 'NO_HEARTBEAT',
    });
    expect(await poll('worker-b')).toBeNull();
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    const reclaimed = await poll('worker-b');
    expect(reclaimed?.id).toBe(item.id);
    // The old holder's echo no longer matches: its lease is gone.
    await expect(
      work.heartbeat(item.id, {
        environment_id: environment.id,
        expected_last_heartbeat: beat.last_heartbeat,
      }),
    ).rejects.toBeInstanceOf(Anthropic.PreconditionFailedError);
  });

  it('reclaims a polled but unacked item after reclaim_older_than_ms', async () => {
    const { environment, poll, work } = setup();
    emulator.createSession({ environmentId: environment.id });
    const item = (await poll())!;
    expect((await work.stats(environment.id)).pending).toBe(1);
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect((await poll())?.id).toBe(item.id);
  });

  it('stops gracefully (stopping, seen on the next heartbeat), then 409 once stopped', async () => {
    const { environment, work, poll } = setup();
    emulator.createSession({ environmentId: environment.id });
    const item = (await poll())!;
    await work.ack(item.id, { environment_id: environment.id });
    const beat = await work.heartbeat(item.id, {
      environment_id: environment.id,
      expected_last_heartbeat: 'NO_HEARTBEAT',
    });
    emulator.faults.stopWork(item.id);
    const seen = await work.heartbeat(item.id, {
      environment_id: environment.id,
      expected_last_heartbeat: beat.last_heartbeat,
    });
    expect(seen).toMatchObject({ state: 'stopping', lease_extended: false });
    const stopped = await work.stop(item.id, { environment_id: environment.id, force: true });
    expect(stopped.state).toBe('stopped');
    const again = await work
      .stop(item.id, { environment_id: environment.id, force: true })
      .catch((e: unknown) => e);
    expect(again).toBeInstanceOf(Anthropic.ConflictError);
  });

  it('queues at most one live item per session, and a new one for a message after the last stopped', async () => {
    const { environment, work, poll } = setup();
    const sessionId = emulator.createSession({ environmentId: environment.id });
    emulator.sendMessage(sessionId, 'first');
    await emulator.waitForTurns(sessionId);
    expect(emulator.workItems(sessionId)).toHaveLength(1);
    const item = (await poll())!;
    await work.stop(item.id, { environment_id: environment.id, force: true });
    emulator.sendMessage(sessionId, 'second');
    await emulator.waitForTurns(sessionId, 2);
    expect(emulator.workItems(sessionId).map((w) => w.state)).toEqual(['stopped', 'queued']);
  });

  it('lists with a cursor (environment key), retrieves with the API key only, and reports stats', async () => {
    const { environment, work, poll } = setup();
    for (let i = 0; i < 3; i++) emulator.createSession({ environmentId: environment.id });
    await poll();
    const ids = [];
    for await (const item of work.list(environment.id, { limit: 2 })) ids.push(item.id);
    expect(ids).toHaveLength(3);
    const app = appClient(emulator.url, emulator.apiKey);
    const retrieved = await app.beta.environments.work.retrieve(ids[0]!, { environment_id: environment.id });
    expect(retrieved.secret).toBeNull();
    await expect(work.retrieve(ids[0]!, { environment_id: environment.id })).rejects.toBeInstanceOf(
      Anthropic.PermissionDeniedError,
    );
    await expect(app.beta.environments.work.list(environment.id)).rejects.toBeInstanceOf(
      Anthropic.PermissionDeniedError,
    );
    const stats = await app.beta.environments.work.stats(environment.id);
    expect(stats).toMatchObject({ type: 'work_queue_stats', depth: 2, pending: 1, workers_polling: 1 });
    expect(stats.oldest_queued_at).toBeTruthy();
  });

  it('rejects another environment key on this queue', async () => {
    const { environment } = setup();
    const other = emulator.createEnvironment('other');
    const intruder = workerClient(emulator.url, other.environmentKey);
    await expect(
      intruder.beta.environments.work.poll(environment.id, { block_ms: 1 }),
    ).rejects.toBeInstanceOf(Anthropic.PermissionDeniedError);
  });
});

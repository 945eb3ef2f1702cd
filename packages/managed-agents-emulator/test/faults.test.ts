import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type StateboxEmulator, startEmulator } from '../src/index.js';
import { tool, workerClient } from './helpers.js';

let emulator: StateboxEmulator;

beforeEach(async () => {
  emulator = await startEmulator({ leaseTtlSeconds: 2, sseHeartbeatMs: 20 });
});

afterEach(async () => {
  await emulator.close();
});

describe('faults and reporting', () => {
  it('sends `: heartbeat` comments on open streams', async () => {
    emulator.addTranscript({ name: 'chat', steps: [{ type: 'message', text: 'hi' }] });
    const environment = emulator.createEnvironment('sse');
    const sessionId = emulator.createSession({ environmentId: environment.id });
    const controller = new AbortController();
    const response = await fetch(`${emulator.url}/v1/sessions/${sessionId}/events/stream`, {
      headers: { authorization: `Bearer ${environment.environmentKey}` },
      signal: controller.signal,
    });
    expect(response.headers.get('content-type')).toBe('text/event-stream');
    const reader = response.body!.getReader();
    let text = '';
    emulator.sendMessage(sessionId, 'hello');
    while (!text.includes(': heartbeat') || !text.includes('event: session.status_idle')) {
      const chunk = await reader.read();
      if (chunk.done) break;
      text += Buffer.from(chunk.value).toString('utf8');
    }
    controller.abort();
    expect(text).toContain('event: user.message\ndata: {');
    expect(text).toContain(': heartbeat\n\n');
  });

  it('makes the SDK worker give up a stolen lease without force-stopping the item', async () => {
    let release: () => void = () => {};
    const blocked = new Promise<void>((resolve) => {
      release = resolve;
    });
    emulator.addTranscript({ name: 'slow', steps: [{ type: 'tool_use', name: 'slow', input: {} }] });
    const environment = emulator.createEnvironment('steal');
    const sessionId = emulator.createSession({ environmentId: environment.id, message: 'go' });
    let started = false;
    const worker = workerClient(emulator.url, environment.environmentKey).beta.environments.work.worker({
      environmentId: environment.id,
      environmentKey: environment.environmentKey,
      tools: [
        tool('slow', () => {
          started = true;
          return blocked.then(() => 'done');
        }),
      ],
      memorySyncIntervalMs: null,
      maxIdleMs: 100,
    });
    const controller = new AbortController();
    const running = worker.run(controller.signal).catch(() => {});
    while (!started) await new Promise((resolve) => setTimeout(resolve, 10));
    const [item] = emulator.workItems(sessionId);
    emulator.faults.stealLease(item!.id);
    // The SDK heartbeats every max(1 s, ttl/2); after the 412 it aborts the session runner and skips the stop.
    const deadline = Date.now() + 5_000;
    while (!emulator.requests.some((r) => r.path.endsWith('/heartbeat') && r.status === 412)) {
      if (Date.now() > deadline) throw new Error('no 412 heartbeat within 5 s');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    release();
    await new Promise((resolve) => setTimeout(resolve, 200));
    controller.abort();
    await running;
    expect(emulator.requests.filter((r) => r.path.endsWith(`/work/${item!.id}/stop`))).toEqual([]);
    expect(emulator.workItems(sessionId)[0]?.state).toBe('active');
  });

  it('reports failed expectations with the actual content', async () => {
    emulator.addTranscript({
      name: 'strict',
      steps: [
        { type: 'tool_use', name: 'bash', input: { command: 'pwd' }, expect: { contains: ['/work', 'x'] } },
      ],
    });
    const environment = emulator.createEnvironment('strict');
    const sessionId = emulator.createSession({ environmentId: environment.id, message: 'run' });
    emulator.sendMessage(sessionId, 'again');
    const app = workerClient(emulator.url, environment.environmentKey);
    for (let turn = 0; turn < 2; turn++) {
      let toolUse: { id: string } | undefined;
      while (!toolUse) {
        const events = await app.beta.sessions.events.list(sessionId, {
          types: ['agent.tool_use'],
          limit: 100,
        });
        toolUse = events.data[turn] as { id: string } | undefined;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      await app.beta.sessions.events.send(sessionId, {
        events: [
          { type: 'user.tool_result', tool_use_id: toolUse.id, content: [{ type: 'text', text: '/work' }] },
        ],
      });
    }
    const report = await emulator.waitForTurns(sessionId, 2);
    expect(report.passed).toBe(false);
    expect(report.turns).toHaveLength(2);
    expect(report.steps[0]).toMatchObject({
      pass: false,
      content: '/work',
      isError: false,
      reason: 'expected the result to contain "x"',
    });
  });
});

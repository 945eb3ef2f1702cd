import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Anthropic from '@anthropic-ai/sdk';
import { WorkPoller } from '@anthropic-ai/sdk/helpers/beta/environments';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type StateboxEmulator, startEmulator } from '../src/index.js';
import { appClient, decodeSecret, workerClient } from './helpers.js';

let emulator: StateboxEmulator;
let scratch: string;

const SKILL = {
  id: 'skill_greeter',
  name: 'greeter',
  description: 'Greets people',
  files: {
    'SKILL.md': '---\nname: greeter\n---\n# Greeter\n',
    'scripts/greet.sh': { content: '#!/bin/sh\necho "hello $1"\n', mode: 0o755 },
  },
};

beforeEach(async () => {
  emulator = await startEmulator({ leaseTtlSeconds: 5, skills: [SKILL] });
  scratch = await mkdtemp(join(tmpdir(), 'statebox-emulator-'));
});

afterEach(async () => {
  await emulator.close();
  await rm(scratch, { recursive: true, force: true });
});

describe('skills', () => {
  it('resolves latest and serves a tar archive the SDK can download', async () => {
    const app = appClient(emulator.url, emulator.apiKey);
    const version = await app.beta.skills.versions.retrieve('latest', { skill_id: SKILL.id });
    expect(version).toMatchObject({ type: 'skill_version', skill_id: SKILL.id, name: 'greeter' });
    const response = await app.beta.skills.versions.download(version.id, { skill_id: SKILL.id });
    const archive = join(scratch, 'skill.tar');
    await writeFile(archive, Buffer.from(await response.arrayBuffer()));
    const listing = execFileSync('tar', ['-tvf', archive], { encoding: 'utf8' });
    expect(listing).toMatch(/-rwxr-xr-x .* greeter\/scripts\/greet\.sh/);
    expect(listing).toContain('greeter/SKILL.md');
    await expect(app.beta.skills.versions.retrieve('nope', { skill_id: SKILL.id })).rejects.toBeInstanceOf(
      Anthropic.NotFoundError,
    );
  });

  it("is extracted by the SDK's EnvironmentWorker, whose built-in tools then run the transcript", async () => {
    emulator.addTranscript({
      name: 'use-skill',
      steps: [
        {
          type: 'tool_use',
          name: 'bash',
          input: {
            command: 'sh skills/greeter/scripts/greet.sh world && test -x skills/greeter/scripts/greet.sh',
          },
          expect: { equals: 'hello world', isError: false },
        },
        { type: 'tool_use', name: 'write', input: { file_path: 'notes.txt', content: 'one\ntwo\n' } },
        {
          type: 'tool_use',
          name: 'read',
          input: { file_path: 'notes.txt' },
          expect: { contains: ['one', 'two'] },
        },
        { type: 'tool_use', name: 'bash', input: { command: 'exit 3' }, expect: { isError: true } },
      ],
    });
    const environment = emulator.createEnvironment('worker');
    const agentId = emulator.createAgent({ skills: [{ type: 'custom', skill_id: SKILL.id }] });
    const sessionId = emulator.createSession({ environmentId: environment.id, agentId, message: 'go' });
    const client = workerClient(emulator.url, environment.environmentKey);
    const controller = new AbortController();
    const worker = client.beta.environments.work.worker({
      environmentId: environment.id,
      environmentKey: environment.environmentKey,
      workdir: scratch,
      maxIdleMs: 100,
      memorySyncIntervalMs: null,
    });
    const running = worker.run(controller.signal).catch(() => {});
    const report = await emulator.waitForTurns(sessionId, 1, 20_000);
    while (emulator.workItems(sessionId)[0]?.state !== 'stopped') {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    controller.abort();
    await running;
    expect(report.steps.map((s) => [s.name, s.pass, s.reason])).toEqual([
      ['bash', true, undefined],
      ['write', true, undefined],
      ['read', true, undefined],
      ['bash', true, undefined],
    ]);
    expect(await readFile(join(scratch, 'notes.txt'), 'utf8')).toBe('one\ntwo\n');
    expect(Object.values(report.answers)).toEqual([1, 1, 1, 1]);
  });
});

describe('memory stores', () => {
  async function claimToken(memoryStoreId: string) {
    const environment = emulator.createEnvironment('memory');
    const sessionId = emulator.createSession({
      environmentId: environment.id,
      resources: [{ type: 'memory_store', memory_store_id: memoryStoreId }],
    });
    const poller = new WorkPoller({
      client: workerClient(emulator.url, environment.environmentKey),
      environmentId: environment.id,
      environmentKey: environment.environmentKey,
      blockMs: 50,
      autoStop: false,
    });
    for await (const work of poller) {
      return { environment, sessionId, token: decodeSecret(work.secret!).sessions_token };
    }
    throw new Error('no work item');
  }

  it('serves memories to the sessions token with content_sha256 preconditions', async () => {
    const storeId = emulator.createMemoryStore({
      name: 'User Preferences',
      memories: { '/prefs.md': 'tabs' },
    });
    const { environment, sessionId, token } = await claimToken(storeId);
    const session = await appClient(emulator.url, emulator.apiKey).beta.sessions.retrieve(sessionId);
    expect(session.resources[0]).toMatchObject({
      type: 'memory_store',
      memory_store_id: storeId,
      mount_path: '/mnt/memory/user-preferences',
    });

    const memories = workerClient(emulator.url, token).beta.memoryStores.memories;
    const page = await memories.list(storeId, { view: 'full' });
    const prefs = page.data[0] as { id: string; content?: string | null; content_sha256: string };
    expect(prefs).toMatchObject({ type: 'memory', path: '/prefs.md', content: 'tabs' });
    const basic = await memories.list(storeId);
    expect((basic.data[0] as { content?: unknown }).content).toBeUndefined();

    const stale = await memories
      .update(prefs.id, {
        memory_store_id: storeId,
        content: 'spaces',
        precondition: { type: 'content_sha256', content_sha256: '0'.repeat(64) },
      })
      .catch((e: unknown) => e);
    expect(stale).toBeInstanceOf(Anthropic.ConflictError);
    const updated = await memories.update(prefs.id, {
      memory_store_id: storeId,
      content: 'spaces',
      precondition: { type: 'content_sha256', content_sha256: prefs.content_sha256 },
    });
    expect(updated.content_sha256).not.toBe(prefs.content_sha256);
    const created = await memories.create(storeId, { path: '/new.md', content: 'x' });
    await expect(memories.create(storeId, { path: '/new.md', content: 'y' })).rejects.toBeInstanceOf(
      Anthropic.ConflictError,
    );
    await memories.delete(created.id, {
      memory_store_id: storeId,
      expected_content_sha256: created.content_sha256,
    });
    expect(emulator.memories(storeId)).toEqual({ '/prefs.md': 'spaces' });

    const asEnvironment = workerClient(emulator.url, environment.environmentKey).beta.memoryStores.memories;
    await expect(asEnvironment.list(storeId)).rejects.toBeInstanceOf(Anthropic.PermissionDeniedError);
    const otherStore = emulator.createMemoryStore({ name: 'other' });
    await expect(memories.list(otherStore)).rejects.toBeInstanceOf(Anthropic.PermissionDeniedError);
  });
});

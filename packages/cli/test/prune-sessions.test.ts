import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Anthropic from '@anthropic-ai/sdk';
import { type StateboxEmulator, startEmulator } from '@statebox/managed-agents-emulator';
import { SESSION_LABEL } from '@statebox/runner';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { statebox } from './support.js';

/**
 * `statebox prune` and the sandboxes the runner made for Managed Agents sessions (label
 * `statebox.session`): those of deleted, archived and terminated sessions go, a live session's stays.
 * The real SDK asks the offline emulator over HTTP; the sandboxes are local ones, made by the CLI.
 */
describe.skipIf(process.platform !== 'linux')('statebox prune: sandboxes of ended sessions', () => {
  let emulator: StateboxEmulator;
  let home = '';
  let env: NodeJS.ProcessEnv = {};

  beforeAll(async () => {
    emulator = await startEmulator();
    home = await mkdtemp(join(tmpdir(), 'statebox-cli-sessions-'));
    env = {
      ...process.env,
      STATEBOX_PROVIDER: 'local',
      STATEBOX_HOME: home,
      ANTHROPIC_API_KEY: emulator.apiKey,
      ANTHROPIC_BASE_URL: emulator.url,
    };
  });

  afterAll(async () => {
    await statebox(['prune'], { ...env, ANTHROPIC_API_KEY: '' });
    const listed = await statebox(['ls', '--json'], env);
    const ids = (JSON.parse(listed.stdout || '[]') as { id: string }[]).map((info) => info.id);
    if (ids.length > 0) await statebox(['destroy', ...ids], env);
    await emulator?.close();
    await rm(home, { recursive: true, force: true });
  });

  it('destroys the sandboxes of deleted and archived sessions and keeps a live one, dry run first', async () => {
    const client = new Anthropic({ apiKey: emulator.apiKey, baseURL: emulator.url });
    const environment = emulator.createEnvironment('cli-prune');
    const sessions = ['deleted', 'archived', 'live'].map(() =>
      emulator.createSession({ environmentId: environment.id }),
    );
    const sandboxes: string[] = [];
    for (const sessionId of sessions) {
      const made = await statebox(['create', '-q', '--label', `${SESSION_LABEL}=${sessionId}`], env);
      expect(made.code).toBe(0);
      sandboxes.push(made.stdout.trim());
    }
    await client.beta.sessions.delete(sessions[0]!);
    await client.beta.sessions.archive(sessions[1]!);

    const dry = JSON.parse((await statebox(['prune', '--dry-run', '--json'], env)).stdout) as {
      items: { kind: string; name: string; reason: string; removed: boolean }[];
    };
    expect(dry.items.filter((item) => item.kind === 'sandbox')).toEqual([
      expect.objectContaining({
        name: sandboxes[0],
        reason: `session ${sessions[0]} deleted`,
        removed: false,
      }),
      expect.objectContaining({
        name: sandboxes[1],
        reason: `session ${sessions[1]} archived`,
        removed: false,
      }),
    ]);
    expect((await statebox(['ls', '--json'], env)).stdout).toContain(sandboxes[0]!);

    const real = await statebox(['prune'], env);
    expect(real.code).toBe(0);
    expect(real.stdout).toMatch(
      new RegExp(`sandbox\\s+${sandboxes[0]}\\s+[\\d.]+ k?B\\s+removed\\s+session ${sessions[0]} deleted`),
    );
    const left = (JSON.parse((await statebox(['ls', '--json'], env)).stdout) as { id: string }[]).map(
      (info) => info.id,
    );
    expect(left).toEqual([sandboxes[2]]);
  });

  it('without ANTHROPIC_API_KEY, says that sessions were not checked and touches no sandbox', async () => {
    const result = await statebox(['prune'], { ...env, ANTHROPIC_API_KEY: '' });
    expect(result.code).toBe(0);
    expect(result.stderr).toMatch(
      /^note: sandboxes of Managed Agents sessions were not checked: set ANTHROPIC_API_KEY/,
    );
    expect(JSON.parse((await statebox(['ls', '--json'], env)).stdout)).toHaveLength(1);
  });
});

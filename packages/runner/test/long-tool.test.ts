import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createStatebox } from '@statebox/core';
import { local } from '@statebox/local';
import { startEmulator } from '@statebox/managed-agents-emulator';
import { describe, expect, it } from 'vitest';
import { startTestRunner } from './fixtures/runner.js';

// The SDK's SessionToolRunner aborts a tool's signal after a fixed 120 s; the runner gives tools its
// own, so a bash call asking for more gets it. It takes over two minutes, so it runs with STATEBOX_SOAK=1.
const soak = process.env.STATEBOX_SOAK === '1';

describe('long tool calls', () => {
  it.skipIf(!soak)(
    `a bash call with timeout_ms 200000 runs past 120 s${soak ? '' : ' (skipped: takes 2 min; set STATEBOX_SOAK=1)'}`,
    async () => {
      const home = mkdtempSync(join(tmpdir(), 'statebox-long-'));
      const emulator = await startEmulator({
        transcripts: [
          {
            name: 'long',
            steps: [
              {
                type: 'tool_use',
                name: 'bash',
                input: { command: 'sleep 125; echo finished', timeout_ms: 200_000 },
                expect: { equals: 'finished' },
              },
            ],
          },
        ],
      });
      const environment = emulator.createEnvironment('long');
      const statebox = createStatebox({ provider: local({ home }) });
      const runner = startTestRunner(emulator, environment, statebox);
      try {
        const sessionId = emulator.createSession({ environmentId: environment.id, message: 'go' });
        const report = await emulator.waitForTurns(sessionId, 1, 180_000);
        expect(report.steps[0]).toMatchObject({ content: 'finished', isError: false });
      } finally {
        await runner.shutdown();
        for (const box of await statebox.list()) await box.destroy();
        await emulator.close();
        rmSync(home, { recursive: true, force: true });
      }
    },
    240_000,
  );
});

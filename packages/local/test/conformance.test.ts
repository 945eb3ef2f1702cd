import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runConformance } from '@statebox/core/testkit';
import { afterAll } from 'vitest';
import { local } from '../src/index.js';
import { localSkipReason } from '../src/testing.js';

const home = mkdtempSync(join(tmpdir(), 'statebox-conformance-'));
afterAll(() => rmSync(home, { recursive: true, force: true }));

runConformance({
  name: 'local',
  createProvider: () => local({ home }),
  skip: localSkipReason(),
});

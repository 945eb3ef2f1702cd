#!/usr/bin/env node
// A file that exists before the build (so install links it), and the root `statebox` script's entry.
import { existsSync } from 'node:fs';

const entry = new URL('../dist/index.js', import.meta.url);
if (!existsSync(entry)) {
  process.stderr.write('statebox is not built yet: run `npx -y pnpm@10 build` first.\n');
  process.exit(1);
}
await import(entry.href);

#!/usr/bin/env node
// A file that exists before the build, so installing the workspace links this bin without a warning.
import { existsSync } from 'node:fs';

const entry = new URL('../dist/cli.js', import.meta.url);
if (!existsSync(entry)) {
  process.stderr.write('statebox-emulator is not built yet: run `npx -y pnpm@10 build` first.\n');
  process.exit(1);
}
await import(entry.href);

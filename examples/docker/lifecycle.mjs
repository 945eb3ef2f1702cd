#!/usr/bin/env node
// A sandbox on Docker: work in /workspace, suspend (the container stops), resume, fork, diverge.
//   node lifecycle.mjs [image]      default image: statebox/debian:bookworm, else STATEBOX_DOCKER_IMAGE
import { createStatebox } from '@statebox/core';
import { docker } from '@statebox/docker';

const statebox = createStatebox({ provider: docker(process.argv[2] ? { image: process.argv[2] } : {}) });
const timed = async (label, action) => {
  const started = performance.now();
  const result = await action();
  console.log(`${label.padEnd(34)} ${(performance.now() - started).toFixed(0).padStart(6)} ms`);
  return result;
};

const box = await timed('create', () => statebox.create({ labels: { example: 'docker' } }));
await box.writeFile('notes.md', '# day one\n');
await box.exec('echo "echo hello from $(hostname)" > hello.sh && chmod +x hello.sh');
await timed('suspend (docker stop)', () => box.suspend());
await timed('resume (docker start)', () => box.resume());
console.log((await box.exec('./hello.sh && cat notes.md')).stdout.trim());

const branch = await timed('fork (no copy of /workspace)', () =>
  box.fork({ labels: { example: 'docker-branch' } }),
);
await branch.writeFile('notes.md', '# the branch\n');
console.log(
  'source:',
  (await box.readFile('notes.md', 'utf8')).trim(),
  '| branch:',
  (await branch.readFile('notes.md', 'utf8')).trim(),
);

await branch.destroy();
await box.destroy();
await (await statebox.provider()).close();

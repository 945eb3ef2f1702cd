// Create, write, suspend (into R2), resume and fork a sandbox on a deployed statebox Worker:
//   STATEBOX_CLOUDFLARE_URL=https://statebox.<account>.workers.dev STATEBOX_CLOUDFLARE_TOKEN=… node lifecycle.mjs
// Without STATEBOX_CLOUDFLARE_URL it starts a local Worker (workerd + Docker) and says so.
import { createFromConfig } from '@statebox/cloudflare';
import { createStatebox } from '@statebox/core';

const statebox = createStatebox({ provider: await createFromConfig({}, process.env) });
const box = await statebox.create({ labels: { example: 'cloudflare' } });
await box.writeFile('notes.txt', 'kept in R2 while suspended\n');
await box.suspend();
console.log('suspended:', (await statebox.get(box.id)).status);
await box.resume();
console.log('after resume:', (await box.exec('cat notes.txt')).stdout.trim());
const child = await box.fork({ labels: { example: 'cloudflare-child' } });
console.log('child sees:', (await child.exec('cat notes.txt')).stdout.trim());
await child.destroy();
await box.destroy();

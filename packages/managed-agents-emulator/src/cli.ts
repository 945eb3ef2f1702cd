#!/usr/bin/env node
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parseTranscript, startEmulator, type Transcript } from './index.js';

const USAGE = `statebox-emulator [--port N] [--api-key KEY] [--transcripts DIR] [--environment NAME]... [--lease-ttl SECONDS]

Starts the Managed Agents emulator on 127.0.0.1 and prints {url, apiKey, environments:[{id, name, environmentKey}]}
as one JSON line. Transcripts are every *.json file in DIR (one transcript, or an array of them, per file).`;

async function loadTranscripts(directory: string): Promise<Transcript[]> {
  const names = (await readdir(directory)).filter((name) => name.endsWith('.json')).sort();
  const transcripts: Transcript[] = [];
  for (const name of names) {
    const path = join(directory, name);
    const parsed = JSON.parse(await readFile(path, 'utf8')) as unknown;
    const list = Array.isArray(parsed) ? parsed : [parsed];
    list.forEach((value, index) => {
      transcripts.push(parseTranscript(value, list.length > 1 ? `${path}[${index}]` : path));
    });
  }
  return transcripts;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      port: { type: 'string' },
      'api-key': { type: 'string' },
      transcripts: { type: 'string' },
      environment: { type: 'string', multiple: true },
      'lease-ttl': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const transcripts = values.transcripts ? await loadTranscripts(values.transcripts) : [];
  const emulator = await startEmulator({
    port: values.port ? Number(values.port) : 0,
    apiKey: values['api-key'],
    transcripts,
    leaseTtlSeconds: values['lease-ttl'] ? Number(values['lease-ttl']) : undefined,
  });
  const environments = (values.environment ?? ['default']).map((name) => ({
    name,
    ...emulator.createEnvironment(name),
  }));
  process.stdout.write(
    `${JSON.stringify({ url: emulator.url, apiKey: emulator.apiKey, environments, transcripts: transcripts.map((t) => t.name) })}\n`,
  );
  const shutdown = () => {
    void emulator.close().then(() => process.exit(0));
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
}

main().catch((error: unknown) => {
  process.stderr.write(`statebox-emulator: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});

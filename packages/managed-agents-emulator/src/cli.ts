#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { loadTranscripts, startEmulator } from './index.js';

const USAGE = `statebox-emulator [--port N] [--api-key KEY] [--transcripts DIR] [--environment NAME]... [--lease-ttl SECONDS]

Starts the Managed Agents emulator on 127.0.0.1 and prints {url, apiKey, environments:[{id, name, environmentKey}]}
as one JSON line. Transcripts are every *.json file in DIR (one transcript, or an array of them, per file).`;

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

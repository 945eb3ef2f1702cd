import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startEmulator } from '@statebox/managed-agents-emulator';

/** `statebox emulator`: the offline Managed Agents API on loopback until interrupted. */
export async function emulatorCommand(options: { port?: number; transcripts?: string }): Promise<void> {
  const transcripts = [];
  if (options.transcripts) {
    for (const file of (await readdir(options.transcripts)).filter((name) => name.endsWith('.json')).sort()) {
      transcripts.push(JSON.parse(await readFile(join(options.transcripts, file), 'utf8')));
    }
  }
  const emulator = await startEmulator({
    ...(options.port !== undefined && { port: options.port }),
    transcripts,
  });
  const environment = await emulator.createEnvironment('statebox');
  process.stdout.write(
    `${JSON.stringify(
      {
        ANTHROPIC_BASE_URL: emulator.url,
        ANTHROPIC_API_KEY: emulator.apiKey,
        STATEBOX_ENVIRONMENT_ID: environment.id,
        ANTHROPIC_ENVIRONMENT_KEY: environment.environmentKey,
        transcripts: transcripts.length,
      },
      null,
      2,
    )}\n`,
  );
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await emulator.close();
}

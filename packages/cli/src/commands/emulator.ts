import { loadTranscripts, startEmulator, type Transcript } from '@statebox/managed-agents-emulator';
import { demoTranscripts } from '../demo-transcripts.js';
import { watchLaunchers } from '../launchers.js';

/**
 * `statebox emulator`: the offline Managed Agents API on loopback until interrupted. It plays the
 * transcripts in `--transcripts DIR` (first, so they win a match) and the demo's, and prints what to
 * export so `statebox session` and `statebox worker` in other terminals talk to it.
 */
export async function emulatorCommand(options: { port?: number; transcripts?: string }): Promise<void> {
  const own = options.transcripts ? await loadTranscripts(options.transcripts) : [];
  const transcripts = [...own, ...(demoTranscripts as Transcript[])];
  const emulator = await startEmulator({
    ...(options.port !== undefined && { port: options.port }),
    transcripts,
  });
  const environment = emulator.createEnvironment('statebox');
  const exports = {
    ANTHROPIC_BASE_URL: emulator.url,
    ANTHROPIC_API_KEY: emulator.apiKey,
    STATEBOX_ENVIRONMENT_ID: environment.id,
    ANTHROPIC_ENVIRONMENT_KEY: environment.environmentKey,
  };
  process.stdout.write(
    `# Managed Agents emulator at ${emulator.url}, playing ${transcripts.length} transcripts ` +
      `(${transcripts.map((transcript) => transcript.name).join(', ')}).\n` +
      '# In the terminals of `statebox worker` and `statebox session`:\n' +
      `${Object.entries(exports)
        .map(([name, value]) => `export ${name}=${value}`)
        .join('\n')}\n`,
  );
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
    // Like the worker: a signal to the `npx` that started it ends it too.
    watchLaunchers(() => resolve());
  });
  await emulator.close();
}

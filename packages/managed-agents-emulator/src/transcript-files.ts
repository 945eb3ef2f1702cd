import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parseTranscript, type Transcript } from './transcript.js';

/**
 * The transcripts in every `*.json` file of a directory (one transcript, or an array of them, per
 * file), in file-name order. A file that is not JSON, or a transcript that is malformed, is an error
 * naming the file (and the index in an array); a directory without one is an error too, never an
 * emulator that silently answers "no transcript matches".
 */
export async function loadTranscripts(directory: string): Promise<Transcript[]> {
  const info = await stat(directory).catch(() => undefined);
  if (!info?.isDirectory()) throw new Error(`--transcripts ${directory}: not a directory`);
  const names = (await readdir(directory)).filter((name) => name.endsWith('.json')).sort();
  if (names.length === 0) throw new Error(`--transcripts ${directory}: no *.json file in it`);
  const transcripts: Transcript[] = [];
  for (const name of names) {
    const path = join(directory, name);
    let parsed: unknown;
    try {
      parsed = JSON.parse(await readFile(path, 'utf8'));
    } catch (error) {
      throw new Error(`${path}: not valid JSON (${error instanceof Error ? error.message : String(error)})`);
    }
    const list = Array.isArray(parsed) ? parsed : [parsed];
    if (list.length === 0) throw new Error(`${path}: an empty array holds no transcript`);
    list.forEach((value, index) => {
      transcripts.push(parseTranscript(value, Array.isArray(parsed) ? `${path}[${index}]` : path));
    });
  }
  return transcripts;
}

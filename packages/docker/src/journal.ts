import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * What a fork is about to create, written before it changes anything (and updated once its commit is
 * known), so that whoever next takes the sandbox's lock can finish or undo a fork whose process died:
 * its names are all chosen up front, so every leftover can be found by name.
 */
export type ForkJournal = {
  /** Unique to this fork: in its temporary names and on its committed image (label `statebox.fork`). */
  token: string;
  /** The source's container when the fork started; it becomes `retiredName`. */
  sourceContainer: string;
  wasRunning: boolean;
  keepRunning: boolean;
  retiredName: string;
  /** Temporary name of the source's replacement until the commit renames it to the sandbox's name. */
  replacementName: string;
  childId: string;
  /** Temporary name of the child until the commit. */
  childName: string;
  layers: string[];
  volumes: string[];
  /** The child's own network (egress sandboxes). */
  childNetwork?: string;
  /** A committed root-filesystem image, once made. */
  image?: string;
};

export class Journals {
  readonly #directory: string;

  constructor(directory: string) {
    this.#directory = directory;
  }

  #path(sandboxId: string): string {
    return join(this.#directory, `${sandboxId}.fork.json`);
  }

  async read(sandboxId: string): Promise<ForkJournal | 'unreadable' | undefined> {
    let text: string;
    try {
      text = await readFile(this.#path(sandboxId), 'utf8');
    } catch {
      return undefined;
    }
    try {
      return JSON.parse(text) as ForkJournal;
    } catch {
      return 'unreadable';
    }
  }

  /** Replaces the journal atomically (a kill mid-write leaves the old one or the new one). */
  async write(sandboxId: string, journal: ForkJournal): Promise<void> {
    await mkdir(this.#directory, { recursive: true });
    const temporary = `${this.#path(sandboxId)}.${process.pid}.tmp`;
    await writeFile(temporary, JSON.stringify(journal));
    await rename(temporary, this.#path(sandboxId));
  }

  async remove(sandboxId: string): Promise<void> {
    await rm(this.#path(sandboxId), { force: true });
  }
}

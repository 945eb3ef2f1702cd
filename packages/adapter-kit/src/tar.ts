import { packTar as pack, unpackTar } from 'modern-tar';

// modern-tar, chosen by measuring (medians of 15 interleaved runs on this repo's 2-core machine, at a
// load average of about 20 from other jobs, so compare ratios; the skill-archive figures are in
// runner/src/archive.ts). One 64 MiB file, the docker provider's largest benchmarked writeFile:
// modern-tar 272 ms, tar-stream 375 ms, nanotar 832 ms. One 1 MiB file: 2.3 / 1.3 / 11.1 ms. A 32 MiB
// benchmark-workspace archive of 991 files: 485 / 414 / 312 ms, but nanotar cuts names to 100 bytes, and
// tar-stream brings 8 MB of dependencies. modern-tar writes PAX records for names past ustar's 100 + 155
// bytes and reads PAX and GNU long names, so no rule of our own about long names remains.

/** What `packTar` writes: a regular file or a directory. */
export type TarInput = {
  /** Path inside the archive, without a leading slash (a directory may end in `/`). */
  name: string;
  type: 'file' | 'directory';
  /** Permission bits; default 0644 for a file, 0755 for a directory. */
  mode?: number | undefined;
  data?: Uint8Array | undefined;
  /** Default: now. */
  mtime?: Date | undefined;
};

/** What `readTar` gives back, for every member. */
export type TarMember = {
  name: string;
  type: 'file' | 'directory' | 'symlink' | 'other';
  mode: number;
  /** The file's bytes (empty for anything but a regular file). */
  data: Uint8Array;
  /** A symlink's or hard link's target. */
  linkName: string;
};

/** One complete archive (end blocks included), every member owned by root (0/0, `root`/`root`). */
export async function packTar(entries: readonly TarInput[]): Promise<Uint8Array<ArrayBuffer>> {
  return await pack(
    entries.map((entry) => {
      const data = entry.type === 'file' ? (entry.data ?? new Uint8Array()) : undefined;
      return {
        header: {
          name: entry.type === 'directory' && !entry.name.endsWith('/') ? `${entry.name}/` : entry.name,
          type: entry.type,
          size: data?.byteLength ?? 0,
          mode: entry.mode ?? (entry.type === 'directory' ? 0o755 : 0o644),
          mtime: entry.mtime ?? new Date(),
          uid: 0,
          gid: 0,
          uname: 'root',
          gname: 'root',
        },
        ...(data && { body: data }),
      };
    }),
  );
}

/** Every member of an archive, in order (PAX and GNU long-name records folded into their member). */
export async function readTar(archive: Uint8Array, options: { limit?: number } = {}): Promise<TarMember[]> {
  const members: TarMember[] = [];
  let kept = 0;
  // Members past the limit are skipped by the parser without buffering their bodies.
  const filter = options.limit === undefined ? undefined : () => kept++ < options.limit!;
  for (const { header, data } of await unpackTar(archive, filter && { filter })) {
    const type = header.type ?? 'file';
    members.push({
      name: header.name,
      type: type === 'file' || type === 'directory' || type === 'symlink' ? type : 'other',
      mode: header.mode ?? 0,
      data: type === 'file' ? (data ?? new Uint8Array()) : new Uint8Array(),
      linkName: header.linkname ?? '',
    });
  }
  return members;
}

/** The first member of an archive (what Docker's `GET /containers/{id}/archive` of one path starts with). */
export async function readFirstEntry(archive: Uint8Array): Promise<TarMember | undefined> {
  return (await readTar(archive, { limit: 1 }))[0];
}

/** One file of an archive. `mode` defaults to 0644; give 0755 for scripts so the exec bit survives. */
export interface ArchiveFile {
  path: string;
  content: Buffer;
  mode?: number;
}

const BLOCK = 512;

function octal(value: number, width: number): string {
  return value.toString(8).padStart(width - 1, '0') + '\0';
}

function header(name: string, size: number, mode: number, typeflag: '0' | '5', mtime: number): Buffer {
  const block = Buffer.alloc(BLOCK, 0);
  const nameBytes = Buffer.from(name, 'utf8');
  // ustar splits long names into prefix (155) + name (100); skill files are short, so refuse rather than
  // silently truncate a path the extractor would then place wrongly.
  if (nameBytes.length > 100) throw new Error(`archive member name longer than 100 bytes: ${name}`);
  nameBytes.copy(block, 0);
  block.write(octal(mode, 8), 100, 'ascii');
  block.write(octal(0, 8), 108, 'ascii');
  block.write(octal(0, 8), 116, 'ascii');
  block.write(octal(size, 12), 124, 'ascii');
  block.write(octal(mtime, 12), 136, 'ascii');
  block.write('        ', 148, 'ascii');
  block.write(typeflag, 156, 'ascii');
  block.write('ustar\0', 257, 'ascii');
  block.write('00', 263, 'ascii');
  block.write('root', 265, 'ascii');
  block.write('root', 297, 'ascii');
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'ascii');
  return block;
}

/**
 * A POSIX ustar archive holding `files` under the top-level directory `root/`, the layout the SDK's skill
 * extractor expects (it lists with `tar -tvf`, rejects links and devices, and strips one wrapper directory).
 */
export function tarArchive(root: string, files: ArchiveFile[]): Buffer {
  const mtime = Math.floor(Date.now() / 1000);
  const parts: Buffer[] = [];
  const directories = new Set<string>([`${root}/`]);
  for (const file of files) {
    const segments = file.path.split('/').filter(Boolean);
    for (let depth = 1; depth < segments.length; depth++) {
      directories.add(`${root}/${segments.slice(0, depth).join('/')}/`);
    }
  }
  for (const directory of [...directories].sort()) parts.push(header(directory, 0, 0o755, '5', mtime));
  for (const file of files) {
    const name = `${root}/${file.path.split('/').filter(Boolean).join('/')}`;
    parts.push(header(name, file.content.length, file.mode ?? 0o644, '0', mtime));
    parts.push(file.content);
    const padding = (BLOCK - (file.content.length % BLOCK)) % BLOCK;
    if (padding) parts.push(Buffer.alloc(padding, 0));
  }
  parts.push(Buffer.alloc(BLOCK * 2, 0));
  return Buffer.concat(parts);
}

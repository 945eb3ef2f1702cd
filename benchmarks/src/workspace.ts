import { packTar, sha256, type TarInput } from '@statebox/adapter-kit';

/**
 * The benchmark workspace: shaped like an agent's real checkout (a node_modules tree, a git object store,
 * sources, one big binary) because file *count* is what makes naive copies slow, and one large
 * incompressible file is what makes naive archives slow. It is generated deterministically in Node
 * and streamed into the sandbox as a series of self-contained tar archives (`tar -x` over exec stdin),
 * so generation costs about as much as extraction; the big file comes from the sandbox's /dev/urandom.
 */

const MiB = 1024 * 1024;

export type WorkspaceSize = {
  name: string;
  /** Files besides the big one. */
  files: number;
  /** Total bytes of those files (approximate: sizes are drawn, then scaled to this). */
  smallFileBytes: number;
  bigFileBytes: number;
};

export const workspaceSizes: Record<string, WorkspaceSize> = {
  small: { name: 'small', files: 2_000, smallFileBytes: 12 * MiB, bigFileBytes: 8 * MiB },
  // The research workspace (npm i of 8 popular packages + 200 MB random + a git repo) was 24,504 files, 739 MB.
  '700mb': { name: '700mb', files: 25_000, smallFileBytes: 500 * MiB, bigFileBytes: 200 * MiB },
  '5gb': { name: '5gb', files: 25_000, smallFileBytes: 4096 * MiB, bigFileBytes: 1024 * MiB },
};

export const WORKSPACE = '/workspace';
export const BIG_FILE = 'big.bin';
/** Where the harness writes markers and scratch files; excluded from the file count. */
export const SCRATCH_DIR = '.bench';

type PlannedFile = { path: string; size: number; binary: boolean; mode: number };

export type WorkspacePlan = {
  size: WorkspaceSize;
  files: PlannedFile[];
  directories: string[];
  /** Paths (relative to the workspace) whose hashes the fidelity check compares, besides the big file. */
  sample: string[];
};

/** mulberry32: tiny, fast, and the same sequence on every machine. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const syllables = [
  'ba',
  'co',
  'de',
  'fi',
  'lo',
  'ma',
  'ne',
  'pa',
  'ri',
  'su',
  'ta',
  'vo',
  'xy',
  'ze',
  'qu',
  'jo',
];

export function planWorkspace(size: WorkspaceSize, seed = 42): WorkspacePlan {
  const next = random(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!;
  const word = (parts: number) => Array.from({ length: parts }, () => pick(syllables)).join('');
  const files: PlannedFile[] = [];
  const used = new Set<string>();
  const add = (path: string, binary: boolean, mode = 0o644) => {
    if (used.has(path)) return;
    used.add(path);
    // Log-normal sizes: median about 2 KB with a long tail, like node_modules. Scaled to the total below.
    const normal = Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next());
    files.push({ path, size: Math.exp(Math.log(2000) + 1.6 * normal), binary, mode });
  };

  const gitFiles = Math.round(size.files * 0.1);
  const sourceFiles = Math.round(size.files * 0.05);
  for (const name of ['HEAD', 'config', 'description', 'index', 'packed-refs', 'refs/heads/main'])
    add(`.git/${name}`, false);
  while (files.length < gitFiles) {
    const hex = Array.from({ length: 40 }, () => Math.floor(next() * 16).toString(16)).join('');
    add(`.git/objects/${hex.slice(0, 2)}/${hex.slice(2)}`, true);
  }
  for (const name of ['package.json', 'README.md', 'tsconfig.json', '.gitignore']) add(name, false);
  while (files.length < gitFiles + sourceFiles) {
    add(`src/${word(2)}/${word(2)}${next() < 0.5 ? '' : `/${word(2)}`}/${word(3)}.ts`, false);
  }
  while (files.length < size.files) {
    const scope = next() < 0.2 ? `@${word(2)}/` : '';
    const root = `node_modules/${scope}${word(3)}`;
    for (const name of ['package.json', 'README.md', 'LICENSE']) add(`${root}/${name}`, false);
    add(`${root}/bin/cli.js`, false, 0o755);
    const count = 5 + Math.floor(next() * 40);
    for (let index = 0; index < count && files.length < size.files; index++) {
      const depth = Math.floor(next() * 4);
      const dirs = Array.from({ length: depth }, () => word(2)).join('/');
      const base = `${root}/${pick(['lib', 'dist', 'esm', 'cjs'])}${dirs ? `/${dirs}` : ''}/${word(2)}`;
      add(`${base}${pick(['.js', '.d.ts', '.js.map', '.json', '.mjs'])}`, false);
    }
  }
  files.length = Math.min(files.length, size.files);

  // Scale to the requested total, capping single files at 16 MiB (the big file stands apart).
  const drawn = files.reduce((sum, file) => sum + file.size, 0);
  for (const file of files)
    file.size = Math.max(0, Math.min(16 * MiB, Math.round((file.size * size.smallFileBytes) / drawn)));

  const directories = new Set<string>();
  for (const file of files) {
    const parts = file.path.split('/');
    for (let end = 1; end < parts.length; end++) directories.add(parts.slice(0, end).join('/'));
  }
  const step = Math.max(1, Math.floor(files.length / 48));
  const sample = files.filter((_, index) => index % step === 0).map((file) => file.path);
  return { size, files, directories: [...directories].sort(), sample };
}

/** Where a generated workspace goes: a statebox sandbox, or a baseline's raw container. */
export type WorkspaceTarget = {
  /** Extracts one self-contained tar archive into the workspace directory. */
  extract(archive: Uint8Array): Promise<void>;
  /** Writes `bytes` random bytes to a path relative to the workspace directory, inside the target. */
  writeRandom(path: string, bytes: number): Promise<void>;
};

export type GeneratedWorkspace = {
  files: number;
  bytes: number;
  bigFileBytes: number;
  generationMs: number;
  /** sha256 of the sampled small files as generated on the host. */
  sampleHashes: Record<string, string>;
};

const CHUNK_BYTES = 32 * MiB;
/** Fixed mtime (2026-01-01) so two generations of one size give byte-identical trees. */
const MTIME = new Date(1_767_225_600_000);

function pool(binary: boolean): Buffer {
  const next = random(binary ? 7 : 11);
  const buffer = Buffer.allocUnsafe(MiB);
  if (binary) {
    for (let offset = 0; offset < buffer.length; offset += 4)
      buffer.writeUInt32LE(Math.floor(next() * 4294967296), offset);
    return buffer;
  }
  const tokens = [
    'const ',
    'return ',
    'function ',
    '=> ',
    '{ ',
    '}\n',
    '(',
    ')',
    ';\n',
    'export ',
    'import ',
    'this.',
    '  ',
  ];
  let offset = 0;
  while (offset < buffer.length) {
    const token =
      next() < 0.5
        ? tokens[Math.floor(next() * tokens.length)]!
        : `${syllables[Math.floor(next() * 16)]}${Math.floor(next() * 100)} `;
    offset += buffer.write(token, offset, 'latin1');
  }
  return buffer;
}

function content(file: PlannedFile, index: number, text: Buffer, binary: Buffer): Buffer {
  const source = file.binary ? binary : text;
  const data = Buffer.allocUnsafe(file.size);
  // A unique header makes every file's hash distinct, so a swapped or stale file is caught by the check.
  let written = data.write(`/* ${file.path} #${index} */\n`, 0, 'utf8');
  let offset = (index * 104_729) % source.length;
  while (written < data.length) {
    const copied = source.copy(
      data,
      written,
      offset,
      Math.min(source.length, offset + data.length - written),
    );
    written += copied;
    offset = 0;
  }
  return data;
}

/** Streams the planned tree into `target` in ~32 MiB archives, generating the next while one extracts. */
export async function generateWorkspace(
  plan: WorkspacePlan,
  target: WorkspaceTarget,
  progress: (message: string) => void = () => undefined,
): Promise<GeneratedWorkspace> {
  const started = performance.now();
  const text = pool(false);
  const binary = pool(true);
  const sampled = new Set(plan.sample);
  const sampleHashes: Record<string, string> = {};
  // /dev/urandom in the sandbox runs on the other core while this one builds archives.
  const big = target.writeRandom(BIG_FILE, plan.size.bigFileBytes);
  // Awaited below; the no-op handler only keeps an early failure from counting as unhandled meanwhile.
  big.catch(() => undefined);
  let inFlight: Promise<void> = Promise.resolve();
  let entries: TarInput[] = plan.directories.map((path) => ({ type: 'directory', name: path, mtime: MTIME }));
  let pending = 0;
  let bytes = 0;
  let archives = 0;
  const flush = async () => {
    const archive = await packTar(entries);
    entries = [];
    pending = 0;
    await inFlight;
    archives++;
    if (archives % 4 === 0)
      progress(`  extracted ${archives} archives, ${Math.round(bytes / MiB)} MiB generated`);
    inFlight = target.extract(archive);
    inFlight.catch(() => undefined);
  };
  for (const [index, file] of plan.files.entries()) {
    const data = content(file, index, text, binary);
    if (sampled.has(file.path)) sampleHashes[file.path] = sha256(data);
    entries.push({ type: 'file', name: file.path, data, mode: file.mode, mtime: MTIME });
    pending += data.length + 512;
    bytes += data.length;
    if (pending >= CHUNK_BYTES) await flush();
  }
  if (entries.length > 0) await flush();
  await inFlight;
  await big;
  return {
    files: plan.files.length + 1,
    bytes: bytes + plan.size.bigFileBytes,
    bigFileBytes: plan.size.bigFileBytes,
    generationMs: performance.now() - started,
    sampleHashes,
  };
}

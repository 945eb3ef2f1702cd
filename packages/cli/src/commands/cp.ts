import { lstat, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { basename, join, posix } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  DEFAULT_WORKDIR,
  FileNotFoundError,
  ProviderError,
  resolveSandboxPath,
  type SandboxProvider,
} from '@statebox/core';
import { create as createTar, extract as extractTar } from 'tar';
import {
  closeProvider,
  formatBytes,
  formatMs,
  loadProvider,
  parseVerb,
  providerOption,
  UsageError,
} from '../operate/common.js';

export const cpUsage =
  'statebox cp [--provider NAME] SRC DEST   (one of them ID:PATH; files and directories)';

/** The most a copy moves (it passes through memory: the spec's files and exec output are whole). */
const MAX_COPY_BYTES = 1024 * 1024 * 1024;

type Endpoint = { sandboxId: string; path: string } | { host: string };

/** `ID:PATH` names a sandbox path; anything else (or with a `/` before the colon, `./a:b`) a host path. */
export function parseEndpoint(argument: string): Endpoint {
  const colon = argument.indexOf(':');
  if (colon > 0 && !argument.slice(0, colon).includes('/')) {
    return { sandboxId: argument.slice(0, colon), path: argument.slice(colon + 1) || '.' };
  }
  return { host: argument };
}

/** What is at a path inside the sandbox: `dir`, `file <mode>`, `other` or `none`. */
const PROBE = `if [ -d "$1" ]; then echo dir; elif [ -f "$1" ]; then echo "file $(stat -c %a -- "$1")"; elif [ -e "$1" ] || [ -L "$1" ]; then echo other; else echo none; fi`;

async function sandboxKind(provider: SandboxProvider, sandboxId: string, path: string) {
  const output = await provider.exec(sandboxId, {
    command: ['/bin/sh', '-c', PROBE, 'statebox-cp', path],
    cwd: '/',
    maxOutputBytes: 4096,
  });
  const [kind = 'none', mode] = new TextDecoder().decode(output.stdout).trim().split(' ');
  return { kind, mode: mode ? Number.parseInt(mode, 8) : undefined };
}

async function run(
  provider: SandboxProvider,
  sandboxId: string,
  script: string,
  args: string[],
  stdin?: Uint8Array,
) {
  const output = await provider.exec(sandboxId, {
    command: ['/bin/sh', '-c', script, 'statebox-cp', ...args],
    cwd: '/',
    maxOutputBytes: MAX_COPY_BYTES,
    ...(stdin && { stdin }),
  });
  if (output.exitCode !== 0 || output.truncated.stdout) {
    const reason = new TextDecoder().decode(output.stderr).trim().split('\n')[0] || `exit ${output.exitCode}`;
    throw new ProviderError(
      provider.name,
      output.truncated.stdout
        ? `Copying from sandbox ${sandboxId} failed: it holds more than ${formatBytes(MAX_COPY_BYTES)}; copy a smaller directory.`
        : `Copying in sandbox ${sandboxId} failed: ${reason}. The sandbox needs tar (the statebox images and local sandboxes have it).`,
      { sandboxId, operation: 'cp' },
    );
  }
  return output.stdout;
}

const isHostDirectory = (path: string) =>
  stat(path).then(
    (info) => info.isDirectory(),
    () => false,
  );

async function toSandbox(provider: SandboxProvider, source: string, sandboxId: string, destination: string) {
  const info = await stat(source).catch(() => {
    throw new UsageError(`cp: no such file or directory on this host: ${source}`, 1);
  });
  const target = await sandboxKind(provider, sandboxId, destination);
  if (info.isDirectory()) {
    if (target.kind !== 'dir' && target.kind !== 'none') {
      throw new UsageError(
        `cp: cannot copy directory ${source} onto ${destination} in ${sandboxId}: it is not a directory.`,
        1,
      );
    }
    const into = target.kind === 'dir' ? posix.join(destination, basename(source)) : destination;
    const chunks: Buffer[] = [];
    await pipeline(createTar({ cwd: source }, ['.']), async (archive: AsyncIterable<Buffer>) => {
      for await (const chunk of archive) chunks.push(chunk);
    });
    const archive = new Uint8Array(Buffer.concat(chunks));
    await run(
      provider,
      sandboxId,
      'mkdir -p -- "$1" && exec tar -xf - --no-same-owner -C "$1"',
      [into],
      archive,
    );
    return { bytes: archive.byteLength, into: `${sandboxId}:${into}` };
  }
  if (!info.isFile()) throw new UsageError(`cp: ${source} is neither a file nor a directory.`, 1);
  const into =
    target.kind === 'dir' || destination.endsWith('/')
      ? posix.join(destination, basename(source))
      : destination;
  const data = new Uint8Array(await readFile(source));
  await provider.writeFile(sandboxId, into, data, { mode: info.mode & 0o7777 });
  return { bytes: data.byteLength, into: `${sandboxId}:${into}` };
}

async function fromSandbox(
  provider: SandboxProvider,
  sandboxId: string,
  source: string,
  destination: string,
) {
  const found = await sandboxKind(provider, sandboxId, source);
  if (found.kind === 'none') {
    throw new FileNotFoundError(source, { sandboxId, operation: 'cp' });
  }
  const hostDirectory = await isHostDirectory(destination);
  if (found.kind === 'dir') {
    if (
      !hostDirectory &&
      (await lstat(destination).then(
        () => true,
        () => false,
      ))
    ) {
      throw new UsageError(
        `cp: cannot copy directory ${sandboxId}:${source} onto ${destination}: it is not a directory.`,
        1,
      );
    }
    const into = hostDirectory ? join(destination, posix.basename(source)) : destination;
    const archive = await run(provider, sandboxId, 'exec tar -C "$1" -cf - .', [source]);
    await mkdir(into, { recursive: true });
    // The archive comes from the sandbox, so it is hostile: node-tar drops absolute and `..` paths and
    // refuses to write through symlinks; owners are not taken from it.
    const skipped: string[] = [];
    await pipeline(
      Readable.from([Buffer.from(archive)]),
      extractTar({
        cwd: into,
        preserveOwner: false,
        // node-tar refuses a relative link that leaves the destination but would make an absolute one
        // relative (`/etc/x` -> `etc/x`): refuse that one too, rather than copy a link that means
        // something else, or one that a later write on the host would follow out of the copy.
        filter: (path, entry) => {
          const link = entry as { type?: string; linkpath?: string };
          if (link.type !== 'SymbolicLink' || !link.linkpath?.startsWith('/')) return true;
          skipped.push(`${path}: a symlink to ${link.linkpath}, outside the copy`);
          return false;
        },
        onwarn: (_code, message, data) => {
          const path = (data as { path?: string } | undefined)?.path;
          skipped.push(`${path ? `${path}: ` : ''}${String(message)}`);
        },
      }),
    );
    if (skipped.length > 0) {
      throw new ProviderError(
        provider.name,
        `Copied ${sandboxId}:${source} to ${into} but skipped ${skipped.length} entr${skipped.length === 1 ? 'y' : 'ies'} ` +
          `that would have been written outside it, through a symlink, or are symlinks out of it (${skipped.slice(0, 3).join('; ')}); ` +
          'nothing outside the destination was touched. Copy those files on their own if you need them.',
        { sandboxId, operation: 'cp' },
      );
    }
    return { bytes: archive.byteLength, into };
  }
  if (found.kind !== 'file')
    throw new UsageError(`cp: ${sandboxId}:${source} is neither a file nor a directory.`, 1);
  const into = hostDirectory ? join(destination, posix.basename(source)) : destination;
  const data = await provider.readFile(sandboxId, source, { maxBytes: MAX_COPY_BYTES });
  await writeFile(into, data, { mode: found.mode ?? 0o644 });
  return { bytes: data.byteLength, into };
}

export async function cpCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseVerb(
    'cp',
    argv,
    { ...providerOption, quiet: { type: 'boolean', short: 'q' } },
    cpUsage,
  );
  if (values.help) {
    process.stdout.write(
      `${cpUsage}\n  Copies a file or a directory between this host and a sandbox, like docker cp.\n`,
    );
    return 0;
  }
  if (positionals.length !== 2) throw new UsageError(`cp needs a source and a destination: ${cpUsage}`);
  const source = parseEndpoint(positionals[0]!);
  const destination = parseEndpoint(positionals[1]!);
  if ('host' in source === 'host' in destination) {
    throw new UsageError(
      `cp copies between this host and a sandbox: write one side as ID:PATH (statebox cp ./notes sbx-123:/workspace/).`,
    );
  }
  const provider = await loadProvider(values.provider as string | undefined);
  try {
    const started = performance.now();
    const sandbox = 'host' in source ? (destination as { sandboxId: string; path: string }) : source;
    const info = await provider.get(sandbox.sandboxId);
    const path = resolveSandboxPath(sandbox.path, info.workdir || DEFAULT_WORKDIR, sandbox.sandboxId);
    const result =
      'host' in source
        ? await toSandbox(
            provider,
            source.host,
            sandbox.sandboxId,
            path + (sandbox.path.endsWith('/') ? '/' : ''),
          )
        : await fromSandbox(provider, sandbox.sandboxId, path, (destination as { host: string }).host);
    if (!values.quiet) {
      process.stderr.write(
        `Copied ${formatBytes(result.bytes)} to ${result.into} in ${formatMs(performance.now() - started)}\n`,
      );
    }
    return 0;
  } finally {
    await closeProvider(provider);
  }
}

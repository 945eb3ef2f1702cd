import { posix } from 'node:path';
import { InvalidPathError } from './errors.js';

export const DEFAULT_WORKDIR = '/workspace';

/**
 * Turns a user's path into a normalised absolute sandbox path.
 *
 * Relative paths are taken from the workdir and may not climb above it with `..`: `../../etc/passwd`
 * from `/workspace` is almost always a mistake or an attack, and an absolute path says the same thing
 * plainly when it is meant. Whether an absolute path reaches outside the sandbox is the provider's job
 * to prevent (the local provider resolves every path inside the sandbox's own mount namespace).
 */
export function resolveSandboxPath(
  path: unknown,
  workdir: string = DEFAULT_WORKDIR,
  sandboxId?: string,
): string {
  const options = sandboxId === undefined ? {} : { sandboxId };
  if (typeof path !== 'string') {
    throw new InvalidPathError(String(path), `expected a string, got ${typeof path}.`, options);
  }
  if (path.length === 0) throw new InvalidPathError(path, 'the path is empty.', options);
  if (path.includes('\0')) throw new InvalidPathError(path, 'it contains a NUL byte.', options);
  if (path.startsWith('/')) return checkLengths(posix.normalize(path).replace(/(.)\/$/, '$1'), path, options);
  const joined = posix.normalize(posix.join(workdir, path));
  const base = workdir.endsWith('/') ? workdir : `${workdir}/`;
  if (joined !== workdir && !joined.startsWith(base)) {
    throw new InvalidPathError(
      path,
      `the relative path climbs out of the workdir ${workdir}. Pass an absolute sandbox path if you mean ${joined}.`,
      options,
    );
  }
  return checkLengths(joined.replace(/(.)\/$/, '$1'), path, options);
}

/** Linux's limits: 255 bytes a name (NAME_MAX), 4095 a path (PATH_MAX less its NUL). */
const NAME_MAX = 255;
const PATH_MAX = 4095;

function checkLengths(resolved: string, path: string, options: { sandboxId?: string }): string {
  const encoder = new TextEncoder();
  if (encoder.encode(resolved).byteLength > PATH_MAX) {
    throw new InvalidPathError(
      path.length > 80 ? `${path.slice(0, 80)}…` : path,
      `it is longer than ${PATH_MAX} bytes, the most a Linux path may have. Use a shorter path, or cd into a directory with exec.`,
      options,
    );
  }
  for (const name of resolved.split('/')) {
    if (encoder.encode(name).byteLength > NAME_MAX) {
      throw new InvalidPathError(
        path.length > 80 ? `${path.slice(0, 80)}…` : path,
        `the name ${JSON.stringify(name.slice(0, 40))}… is ${encoder.encode(name).byteLength} bytes, over the ${NAME_MAX} a file name may have.`,
        options,
      );
    }
  }
  return resolved;
}

/** POSIX single-quoting: the value reaches the shell as one literal word. */
export function shellQuote(value: string): string {
  return `'${value.replaceAll("'", "'\\''")}'`;
}

/** Wraps a script so the toolbox daemon runs it with `/bin/sh` whatever way it splits the command line. */
export function shCommand(script: string): string {
  return `/bin/sh -c ${shellQuote(script)}`;
}

/**
 * Decodes a line of base64 from a script's output (`base64 -w0`), byte-exact. An empty line is empty.
 */
export function fromBase64(line: string): Uint8Array {
  return new Uint8Array(Buffer.from(line.trim(), 'base64'));
}

export function toBase64(data: Uint8Array): string {
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('base64');
}

/**
 * Most bytes of a value that may be inlined into one command (as base64): Linux refuses a single argument
 * over 128 KiB (MAX_ARG_STRLEN), and the daemon passes the command as one.
 */
export const INLINE_BYTES = 48 * 1024;

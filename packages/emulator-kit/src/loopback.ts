import { isIP } from 'node:net';

/**
 * True for an address that only this machine can reach: 127.0.0.0/8, ::1, `localhost`. Emulators accept
 * any credential shaped like a vendor key and run real commands in sandboxes, so they must never listen
 * where another machine could call them.
 */
export function isLoopbackHost(host: string): boolean {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  if (bare === 'localhost') return true;
  if (isIP(bare) === 4) return bare.startsWith('127.');
  if (isIP(bare) === 6) return bare === '::1' || /^::ffff:127\./i.test(bare);
  return false;
}

/** Throws unless `host` is a loopback address; the message says what to do instead. */
export function assertLoopbackHost(emulator: string, host: string): void {
  if (!isLoopbackHost(host)) {
    throw new Error(
      `${emulator} emulator: refusing to listen on ${host}: emulators bind loopback only (127.0.0.1, ::1 or localhost), so that no other machine can reach their fake credentials and real sandboxes`,
    );
  }
}

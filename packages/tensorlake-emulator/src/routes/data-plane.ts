import type { Sandbox } from '@statebox/core';
import { type EmulatorContext, HttpError } from '@statebox/emulator-kit';
import type { RequestFields, TensorlakeEmulator } from '../emulator.js';
import { conflict, notFound, unauthorized } from '../errors.js';
import { isGone, type SandboxRecord } from '../state.js';

/**
 * The data plane: with a loopback proxy URL the SDK sends `Host: {sandboxId}.local` (verified, see
 * research/providers.md 1.1), and the service's proxy forwards to the daemon in that sandbox's VM.
 */
export function dataPlaneTarget(
  emulator: TensorlakeEmulator,
  c: EmulatorContext<object, RequestFields>,
): { record: SandboxRecord; sandbox: Sandbox } {
  const authorization = c.req.header('authorization');
  if (authorization !== undefined && authorization !== `Bearer ${emulator.apiKey}`) throw unauthorized();
  const host = (c.req.header('host') ?? '').replace(/:\d+$/, '');
  if (!host.endsWith('.local')) {
    throw new HttpError(
      400,
      `data-plane request without a sandbox Host header (got ${JSON.stringify(host)}): the SDK sends Host: {sandboxId}.local`,
    );
  }
  const record = emulator.table.byId(host.slice(0, -'.local'.length));
  if (!record || isGone(record.status)) throw notFound('sandbox');
  // What the proxy answers for a sandbox that is not running is UNCONFIRMED; the emulator says 409.
  if (record.status !== 'running') throw conflict(`sandbox ${record.id} is ${record.status}`);
  const sandbox = emulator.backing.get(record.id);
  if (!sandbox) throw notFound('sandbox');
  return { record, sandbox };
}

/** An absolute path from the `path` query parameter. */
export function pathParameter(c: EmulatorContext<object, RequestFields>): string {
  const path = c.req.query('path');
  if (!path?.startsWith('/')) {
    throw new HttpError(400, `path must be an absolute path, got ${JSON.stringify(path ?? null)}`);
  }
  return path;
}

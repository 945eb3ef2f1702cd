import { param, type RouteHandler } from '@statebox/emulator-kit';
import type { RequestFields, TensorlakeEmulator } from '../emulator.js';
import { unauthorized } from '../errors.js';

/** Lifecycle calls carry `Authorization: Bearer <TENSORLAKE_API_KEY>`; anything else is a 401. */
export function requireKey(emulator: TensorlakeEmulator): RouteHandler<object, RequestFields> {
  return (c, next) => {
    if (c.req.header('authorization') !== `Bearer ${emulator.apiKey}`) throw unauthorized();
    // Only the emulator's namespace exists; the SDK sends `default` unless INDEXIFY_NAMESPACE says otherwise.
    param(c, 'namespace');
    return next();
  };
}

import Anthropic from '@anthropic-ai/sdk';
import type { BetaRunnableTool } from '@anthropic-ai/sdk/lib/tools/BetaRunnableTool';

/** A quiet SDK client for the app side. */
export function appClient(url: string, apiKey: string): Anthropic {
  return new Anthropic({ baseURL: url, apiKey, logLevel: 'off' });
}

/** A worker-side client authenticated with an environment key or a sessions token. */
export function workerClient(url: string, token: string): Anthropic {
  return new Anthropic({ baseURL: url, apiKey: null, authToken: token, logLevel: 'off' });
}

/** A trivial in-process tool: returns `run(input)` as text. */
export function tool(
  name: string,
  run: (input: Record<string, unknown>) => string | Promise<string>,
): BetaRunnableTool {
  return {
    type: 'custom',
    name,
    description: `${name} (test tool)`,
    input_schema: { type: 'object', properties: {} },
    parse: (content: unknown) => content as Record<string, unknown>,
    run: (input: Record<string, unknown>) => run(input),
  } as BetaRunnableTool;
}

export function decodeSecret(secret: string): { sessions_token: string; api_base_url?: string } {
  return JSON.parse(Buffer.from(secret, 'base64url').toString('utf8'));
}

/** Read a stream until an event satisfies `predicate`; the stream stays open for further reads. */
export async function until<T extends { type: string }, S extends T = T>(
  iterator: AsyncIterator<T>,
  predicate: ((event: T) => event is S) | ((event: T) => boolean),
): Promise<S> {
  while (true) {
    const next = await iterator.next();
    if (next.done) throw new Error('stream ended before the expected event');
    if (predicate(next.value)) return next.value as S;
  }
}

/** Read a stream until the first event of `type`. */
export function untilType<T extends { type: string }, K extends T['type']>(
  iterator: AsyncIterator<T>,
  type: K,
): Promise<Extract<T, { type: K }>> {
  return until(iterator, (event): event is Extract<T, { type: K }> => event.type === type);
}

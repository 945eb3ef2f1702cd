/** One request as the emulator saw it. Entries are live: `status` is filled in when the answer is sent. */
export interface RequestRecord {
  /** The id the kit gave the request (vendors echo it in a header or error body). */
  requestId: string;
  method: string;
  /** The path as sent, percent-encoding kept. */
  path: string;
  /** The route that answered, as registered (`POST /v1/sessions/:sessionId/events`); `null` for none. */
  route: string | null;
  /** The status sent; 0 while the request is in flight or when a fault dropped the connection. */
  status: number;
  /** The fault rule that acted on this request, if any. */
  fault?: 'delay' | 'status' | 'drop';
  /** No route matched: answered 501 (see `EmulatorServer.unhandled`). */
  unhandled?: true;
}

/**
 * The requests an emulator handled, oldest first, for tests to assert on (`log.find('POST', /events$/)`).
 * Bounded: past `limit` entries the oldest are dropped, so a long benchmark does not grow without end.
 */
export class RequestLog<Extra extends object = Record<never, never>> {
  readonly #entries: Array<RequestRecord & Extra> = [];
  readonly #limit: number;

  constructor(limit = 10_000) {
    this.#limit = limit;
  }

  /** Every entry still kept, oldest first (the live array: do not mutate it). */
  get entries(): ReadonlyArray<RequestRecord & Extra> {
    return this.#entries;
  }

  add(entry: RequestRecord & Extra): RequestRecord & Extra {
    if (this.#entries.length >= this.#limit) this.#entries.shift();
    this.#entries.push(entry);
    return entry;
  }

  /** Entries with this method whose path equals `path` (a string) or matches it (a RegExp). */
  find(method: string, path: string | RegExp): Array<RequestRecord & Extra> {
    return this.#entries.filter((entry) => entry.method === method && matchesPath(path, entry.path));
  }

  clear(): void {
    this.#entries.length = 0;
  }
}

export function matchesPath(pattern: string | RegExp, path: string): boolean {
  return typeof pattern === 'string' ? pattern === path : pattern.test(path);
}

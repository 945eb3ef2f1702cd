/**
 * Times tool calls at the runner's network boundary. The runner builds its own Anthropic clients, which
 * take `globalThis.fetch` when constructed, so a fetch installed before `new Runner()` sees every byte
 * the runner reads and every request it sends, without touching the runner. For each `agent.tool_use`
 * it records when the SSE frame carrying it arrived, and when the runner started the POST carrying its
 * `user.tool_result`: the difference is the runner's whole turnaround for that call (SSE parsing, input
 * validation, sandbox look-up, the tool, building and sending the result).
 */
export class WireTap {
  /** tool_use event id -> `performance.now()` when its SSE frame reached the runner's fetch. */
  readonly received = new Map<string, number>();
  /** tool_use id -> `performance.now()` when the runner called fetch to post its result (first attempt). */
  readonly posted = new Map<string, number>();
  #original: typeof fetch | undefined;

  /** Replaces `globalThis.fetch` until `uninstall()`; clients constructed meanwhile keep the tap. */
  install(): void {
    if (this.#original) return;
    const original = globalThis.fetch;
    this.#original = original;
    globalThis.fetch = async (input: Parameters<typeof fetch>[0], init?: RequestInit): Promise<Response> => {
      const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
      const method = (init?.method ?? (input instanceof Request ? input.method : 'GET')).toUpperCase();
      if (method === 'POST' && /\/v1\/sessions\/[^/]+\/events(\?|$)/.test(url)) this.#notePost(init?.body);
      const response = await original(input, init);
      if (!/\/events\/stream(\?|$)/.test(url) || !response.body) return response;
      return new Response(response.body.pipeThrough(this.#frameScanner()), {
        status: response.status,
        statusText: response.statusText,
        headers: response.headers,
      });
    };
  }

  uninstall(): void {
    if (this.#original) globalThis.fetch = this.#original;
    this.#original = undefined;
  }

  /** Receive-to-post milliseconds of each given tool_use id that has both ends recorded. */
  turnaround(toolUseIds: Iterable<string>): number[] {
    const samples: number[] = [];
    for (const id of toolUseIds) {
      const received = this.received.get(id);
      const posted = this.posted.get(id);
      if (received !== undefined && posted !== undefined) samples.push(posted - received);
    }
    return samples;
  }

  #notePost(body: unknown): void {
    const now = performance.now();
    if (typeof body !== 'string') return;
    let parsed: { events?: { type?: string; tool_use_id?: string; custom_tool_use_id?: string }[] };
    try {
      parsed = JSON.parse(body);
    } catch {
      return;
    }
    for (const event of parsed.events ?? []) {
      const id = event.type === 'user.tool_result' ? event.tool_use_id : event.custom_tool_use_id;
      if (id && !this.posted.has(id)) this.posted.set(id, now);
    }
  }

  /** A pass-through stream that timestamps each complete `agent.tool_use` frame as its last chunk arrives. */
  #frameScanner(): TransformStream<Uint8Array, Uint8Array> {
    const decoder = new TextDecoder();
    let pending = '';
    return new TransformStream({
      transform: (chunk, controller) => {
        const now = performance.now();
        controller.enqueue(chunk);
        pending += decoder.decode(chunk, { stream: true });
        let end = pending.indexOf('\n\n');
        while (end >= 0) {
          const frame = pending.slice(0, end);
          pending = pending.slice(end + 2);
          end = pending.indexOf('\n\n');
          if (!frame.includes('agent.tool_use') && !frame.includes('agent.custom_tool_use')) continue;
          const data = frame
            .split('\n')
            .filter((line) => line.startsWith('data:'))
            .map((line) => line.slice(5).trimStart())
            .join('\n');
          try {
            const event = JSON.parse(data) as { id?: string; type?: string };
            if (event.id && (event.type === 'agent.tool_use' || event.type === 'agent.custom_tool_use')) {
              if (!this.received.has(event.id)) this.received.set(event.id, now);
            }
          } catch {
            // Not an event frame (a heartbeat comment or a partial frame): nothing to time.
          }
        }
      },
    });
  }
}

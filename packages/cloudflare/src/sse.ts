/**
 * Server-sent events from a byte stream, each `data:` payload parsed as JSON. Free of Node built-ins: the
 * Node provider reads the Worker's exec stream with it, and the Worker reads the SDK's streams.
 */
export async function* sseEvents<T>(stream: ReadableStream<Uint8Array>): AsyncGenerator<T> {
  const decoder = new TextDecoder();
  let buffer = '';
  // Text of an event still arriving: an event of megabytes (the SDK's `complete` event repeats the
  // whole output) comes in thousands of chunks, and appending each to one string that is then searched
  // makes the engine flatten the whole string every time (quadratic: 10 MiB of output took 16.6 s).
  // The chunks wait here, only the new one is searched, and they are joined once the event is whole.
  const waiting: string[] = [];
  const reader = stream.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      const text = decoder.decode(value, { stream: true });
      if (!text) continue;
      const previous = waiting.length > 0 ? waiting[waiting.length - 1]! : buffer;
      const boundary = previous.endsWith('\n') && text.startsWith('\n');
      if (!boundary && !text.includes('\n\n')) {
        waiting.push(text);
        continue;
      }
      buffer += waiting.join('') + text;
      waiting.length = 0;
      let end = buffer.indexOf('\n\n');
      while (end >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = block
          .split('\n')
          .filter((line) => line.startsWith('data:'))
          .map((line) => line.slice(5).trimStart())
          .join('\n');
        if (data) yield JSON.parse(data) as T;
        end = buffer.indexOf('\n\n');
      }
    }
  } finally {
    reader.releaseLock();
  }
}

/**
 * Server-sent events from a byte stream, each `data:` payload parsed as JSON. Free of Node built-ins: the
 * Node provider reads the Worker's exec stream with it, and the Worker reads the SDK's streams.
 */
export async function* sseEvents<T>(stream: ReadableStream<Uint8Array>): AsyncGenerator<T> {
  const decoder = new TextDecoder();
  let buffer = '';
  const reader = stream.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      // Search only the new text (and the one character before it): an event of megabytes arrives in
      // many chunks, and scanning the whole buffer for every chunk would be quadratic.
      const searchFrom = Math.max(0, buffer.length - 1);
      buffer += decoder.decode(value, { stream: true });
      let end = buffer.indexOf('\n\n', searchFrom);
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

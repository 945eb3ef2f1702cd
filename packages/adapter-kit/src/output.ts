/**
 * Keeps a stream's output within a byte cap without ever holding more than the cap in memory.
 *
 * Over the cap it keeps the first and the last half and replaces the middle with a marker line, because
 * the head says what a command started doing and the tail holds the error that ended it.
 */
export class OutputBuffer {
  readonly #cap: number;
  readonly #headCap: number;
  readonly #tailCap: number;
  #head: Uint8Array[] = [];
  #headBytes = 0;
  // Ring of recent chunks; trimmed from the front when it grows past the tail cap.
  #tail: Uint8Array[] = [];
  #tailBytes = 0;
  #total = 0;

  constructor(cap: number) {
    this.#cap = cap;
    this.#headCap = Math.ceil(cap / 2);
    this.#tailCap = cap - this.#headCap;
  }

  /** Bytes seen so far, kept or not. */
  get totalBytes(): number {
    return this.#total;
  }

  get truncated(): boolean {
    return this.#total > this.#cap;
  }

  push(chunk: Uint8Array): void {
    this.#total += chunk.byteLength;
    let rest = chunk;
    if (this.#headBytes < this.#headCap) {
      const take = Math.min(this.#headCap - this.#headBytes, rest.byteLength);
      this.#head.push(rest.subarray(0, take));
      this.#headBytes += take;
      rest = rest.subarray(take);
    }
    if (rest.byteLength === 0) return;
    if (rest.byteLength >= this.#tailCap) {
      this.#tail = [rest.slice(rest.byteLength - this.#tailCap)];
      this.#tailBytes = this.#tailCap;
      return;
    }
    this.#tail.push(rest);
    this.#tailBytes += rest.byteLength;
    while (this.#tailBytes > this.#tailCap) {
      const first = this.#tail[0]!;
      const excess = this.#tailBytes - this.#tailCap;
      if (first.byteLength <= excess) {
        this.#tail.shift();
        this.#tailBytes -= first.byteLength;
      } else {
        this.#tail[0] = first.subarray(excess);
        this.#tailBytes -= excess;
      }
    }
  }

  /** The kept bytes, with `\n[statebox: N bytes omitted]\n` in place of what did not fit. */
  toBytes(): Uint8Array {
    const parts = [...this.#head];
    if (this.truncated) {
      const omitted = this.#total - this.#headBytes - this.#tailBytes;
      parts.push(new TextEncoder().encode(truncationMarker(omitted)));
    }
    parts.push(...this.#tail);
    return concatBytes(parts);
  }
}

/** The marker that replaces omitted output. Stable: callers may search for `[statebox: `. */
export function truncationMarker(omittedBytes: number): string {
  return `\n[statebox: ${omittedBytes} bytes of output omitted]\n`;
}

export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  let length = 0;
  for (const part of parts) length += part.byteLength;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.byteLength;
  }
  return out;
}

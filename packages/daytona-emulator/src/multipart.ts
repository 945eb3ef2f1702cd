import { randomBytes } from 'node:crypto';

export type Part = {
  /** `file` for content, `error` for a per-file failure. */
  field: 'file' | 'error';
  /** The source path, which the SDK matches its request against. */
  filename: string;
  contentType: string;
  body: Uint8Array;
};

/** A `multipart/form-data` answer, as the daemon's bulk download sends it (one part per path). */
export function multipartResponse(parts: readonly Part[]): Response {
  const boundary = `daytona-emulator-${randomBytes(12).toString('hex')}`;
  const chunks: Buffer[] = [];
  for (const part of parts) {
    const filename = part.filename.replaceAll('"', '%22');
    chunks.push(
      Buffer.from(
        `--${boundary}\r\nContent-Disposition: form-data; name="${part.field}"; filename="${filename}"\r\n` +
          `Content-Type: ${part.contentType}\r\nContent-Length: ${part.body.byteLength}\r\n\r\n`,
      ),
      Buffer.from(part.body.buffer, part.body.byteOffset, part.body.byteLength),
      Buffer.from('\r\n'),
    );
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return new Response(Buffer.concat(chunks), {
    status: 200,
    headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
  });
}

// Response helpers shared by the control server's routes.

/** A failure the SDK turns into a typed error: its `createErrorFromResponse` switches on `code`. */
export class ApiError extends Error {
  constructor(httpStatus, code, message, context) {
    super(message);
    this.httpStatus = httpStatus;
    this.code = code;
    this.context = context ?? {};
  }
}

export function errorBody(error, operation) {
  return {
    code: error.code,
    message: error.message,
    context: error.context,
    httpStatus: error.httpStatus,
    operation,
    timestamp: new Date().toISOString(),
  };
}

export function sendJson(response, status, value) {
  const text = JSON.stringify(value);
  response.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
  });
  response.end(text);
}

/** Starts a Server-Sent Events response; returns a writer of `data:` events. */
export function startSse(response) {
  response.writeHead(200, {
    'content-type': 'text/event-stream',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
  });
  response.flushHeaders();
  return (event) =>
    new Promise((resolve) => {
      if (response.destroyed || response.writableEnded) return resolve(false);
      const ok = response.write(`data: ${JSON.stringify(event)}\n\n`);
      if (ok) resolve(true);
      else response.once('drain', () => resolve(true));
    });
}

/** Maps a Node file-system error to the SDK's error codes (shared/src/errors/codes.ts). */
export function fileError(error, path) {
  const context = { path };
  switch (error?.code) {
    case 'ENOENT':
      return new ApiError(404, 'FILE_NOT_FOUND', `File not found: ${path}`, context);
    case 'EACCES':
    case 'EPERM':
      return new ApiError(403, 'PERMISSION_DENIED', `Permission denied: ${path}`, context);
    case 'EISDIR':
      return new ApiError(400, 'IS_DIRECTORY', `Path is a directory: ${path}`, context);
    case 'ENOTDIR':
      return new ApiError(400, 'NOT_DIRECTORY', `Not a directory: ${path}`, context);
    case 'ENOSPC':
      return new ApiError(507, 'NO_SPACE', `No space left on device: ${path}`, context);
    case 'EROFS':
      return new ApiError(403, 'READ_ONLY', `Read-only file system: ${path}`, context);
    case 'ENAMETOOLONG':
      return new ApiError(400, 'NAME_TOO_LONG', `File name too long: ${path}`, context);
    default:
      return new ApiError(500, 'FILESYSTEM_ERROR', `${error?.message ?? error}`, context);
  }
}

import { type ErrorResponder, HttpError } from '@statebox/emulator-kit';

/**
 * Tensorlake's error body is `{"message": "..."}`: the SDK's Rust core passes it through verbatim in
 * `RemoteAPIError` ("API error (status 404): {"message":"file not found"}", recorded in
 * research/providers-update.md A.4), and the status alone decides the error class.
 */
export const errorResponse: ErrorResponder = (error) => ({ body: { message: error.message } });

export function notFound(what: string): HttpError {
  return new HttpError(404, `${what} not found`, { code: 'not_found' });
}

export function badRequest(message: string): HttpError {
  return new HttpError(400, message, { code: 'bad_request' });
}

export function conflict(message: string): HttpError {
  return new HttpError(409, message, { code: 'conflict' });
}

export function unauthorized(): HttpError {
  return new HttpError(401, 'invalid or missing API key', { code: 'unauthorized' });
}

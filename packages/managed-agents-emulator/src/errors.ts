import { type ErrorResponder, HttpError } from '@statebox/emulator-kit';

/**
 * An error the emulator answers with `{type:'error', error:{type, message, ...}, request_id}`, the body shape
 * of the real API. `retryable: false` adds `x-should-retry: false` so the SDK does not spend its retries on an
 * answer that cannot change (a 409 the SDK would otherwise retry twice).
 */
export class ApiError extends HttpError {
  override name = 'ApiError';
  constructor(
    status: number,
    type: string,
    message: string,
    extra: { details?: Record<string, unknown>; retryable?: boolean } = {},
  ) {
    super(status, message, { code: type, ...extra });
  }

  /** The API's error type (`invalid_request_error`, `not_found_error`...). */
  get type(): string {
    return this.code ?? 'api_error';
  }
}

export const badRequest = (message: string) => new ApiError(400, 'invalid_request_error', message);
export const unauthorized = (message: string) => new ApiError(401, 'authentication_error', message);
export const forbidden = (message: string) => new ApiError(403, 'permission_error', message);
export const notFound = (message: string) => new ApiError(404, 'not_found_error', message);
export const conflict = (message: string, type = 'invalid_request_error') =>
  new ApiError(409, type, message, { retryable: false });

/** The API's error type of an error: its own, or one for the codes the kit raises (unknown route, bug...). */
function errorType(error: HttpError): string {
  switch (error.code) {
    case undefined:
      return 'api_error';
    case 'invalid_json':
      return 'invalid_request_error';
    case 'request_too_large':
      return 'request_too_large';
    case 'injected_fault':
      return error.status === 529 ? 'overloaded_error' : 'api_error';
    case 'not_implemented':
    case 'internal_error':
      // An unknown route (501) or a bug (500): the emulator's failure, not the caller's.
      return 'api_error';
    default:
      return error.code;
  }
}

/** The error body and headers of the real API, for every error the emulator answers. */
export const errorResponse: ErrorResponder = (error, { requestId }) => {
  const body: Record<string, unknown> = { type: errorType(error), message: error.message };
  if (error.details) body.details = error.details;
  const headers: Record<string, string> = { 'request-id': requestId };
  if (error.retryable === false) headers['x-should-retry'] = 'false';
  return { body: { type: 'error', error: body, request_id: requestId }, headers };
};

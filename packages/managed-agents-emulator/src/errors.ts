/**
 * An error the emulator answers with `{type:'error', error:{type, message, ...}}`, the body shape of the real
 * API. `retryable: false` adds `x-should-retry: false` so the SDK does not spend its retries on an answer that
 * cannot change (a 409 the SDK would otherwise retry twice).
 */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly status: number,
    readonly type: string,
    message: string,
    readonly extra: { details?: Record<string, unknown>; retryable?: boolean } = {},
  ) {
    super(message);
  }

  body(): Record<string, unknown> {
    const error: Record<string, unknown> = { type: this.type, message: this.message };
    if (this.extra.details) error.details = this.extra.details;
    return { type: 'error', error };
  }
}

export const badRequest = (message: string) => new ApiError(400, 'invalid_request_error', message);
export const unauthorized = (message: string) => new ApiError(401, 'authentication_error', message);
export const forbidden = (message: string) => new ApiError(403, 'permission_error', message);
export const notFound = (message: string) => new ApiError(404, 'not_found_error', message);
export const conflict = (message: string, type = 'invalid_request_error') =>
  new ApiError(409, type, message, { retryable: false });

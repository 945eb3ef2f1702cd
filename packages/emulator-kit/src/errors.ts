/**
 * Codes the kit itself raises. A vendor's `errorResponse` maps them to its own error vocabulary
 * (Anthropic's `api_error`, Daytona's `statusCode`/`error`, Cloudflare's `errors[].code`...).
 */
export type KitErrorCode =
  /** No route matched: the SDK sent something this emulator does not implement (status 501). */
  | 'not_implemented'
  /** A handler threw something that is not an `HttpError`: a bug in the emulator (status 500). */
  | 'internal_error'
  /** A fault rule answered instead of the handler. */
  | 'injected_fault'
  /** The request body exceeded the limit given to `readBody` (status 413). */
  | 'request_too_large'
  /** The request body is not the JSON object the route expects (status 400). */
  | 'invalid_json';

export interface HttpErrorOptions {
  /** The vendor's error type or code (`not_found_error`, `SANDBOX_NOT_FOUND`), or one of `KitErrorCode`. */
  code?: string;
  /** Extra structured fields the vendor puts in its error body. */
  details?: Record<string, unknown>;
  /**
   * `false` when retrying cannot change the answer. Vendors whose SDKs honour a header for it (Stainless
   * SDKs read `x-should-retry: false`) set that header from this flag.
   */
  retryable?: boolean;
}

const MARK = Symbol.for('statebox.emulator-kit.HttpError');

/**
 * An answer with a non-2xx status. Throw it from a handler or middleware; the emulator's `errorResponse`
 * turns it into the vendor's error body.
 */
export class HttpError extends Error {
  override name = 'HttpError';
  readonly [MARK] = true;
  readonly status: number;
  readonly code: string | undefined;
  readonly details: Record<string, unknown> | undefined;
  readonly retryable: boolean | undefined;

  constructor(status: number, message: string, options: HttpErrorOptions = {}) {
    super(message);
    this.status = status;
    this.code = options.code;
    this.details = options.details;
    this.retryable = options.retryable;
  }

  /** True for an `HttpError` from any copy of this package. */
  static isInstance(value: unknown): value is HttpError {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[MARK] === true;
  }
}

/** What an emulator answers for an error: the body (serialised as JSON) and extra headers. */
export interface ErrorResponse {
  body: unknown;
  headers?: Record<string, string>;
}

/** Turns an error into the vendor's error body. `requestId` is the id the kit gave the request. */
export type ErrorResponder = (error: HttpError, context: { requestId: string }) => ErrorResponse;

/** A plain `{ error: { code, message } }` body, for emulators that do not pass their own responder. */
export const defaultErrorResponse: ErrorResponder = (error, { requestId }) => ({
  body: { error: { code: error.code ?? 'error', message: error.message, ...error.details }, requestId },
});

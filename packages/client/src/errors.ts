// The errors the SDK throws. Codes are the HTTP API's, all of them from the one registry in
// @tokenwarden/core (`ERROR_CODES`). The SDK imports nothing, so the list below repeats them; a
// compile-time check in test/errors.test.ts fails when the registry has a code this list lacks.
// Two more only the SDK can see: the server could not be reached, or answered something
// unreadable.

/** Every code the SDK knows a meaning for. Unknown codes from a newer server still arrive typed. */
export type ErrorCode =
  | 'not_found'
  | 'needs_reauth'
  | 'refresh_unavailable'
  | 'invalid_request'
  | 'invalid_input'
  | 'unauthorized'
  | 'forbidden'
  | 'payload_too_large'
  | 'uri_too_long'
  | 'headers_too_large'
  | 'request_timeout'
  | 'decrypt_failed'
  | 'key_ring_invalid'
  | 'store_unavailable'
  | 'unknown_provider'
  | 'provider_misconfigured'
  | 'internal_error'
  | 'shutting_down'
  | 'proxy_not_configured'
  | 'upstream_unreachable'
  | 'upstream_timeout'
  | 'webhook_url_refused'
  | 'network_error'
  | 'unexpected_response'
  | 'webhook_invalid';

/** Why a connection needs its owner to authorize again (see docs/errors.md). */
export type ReauthReason =
  | 'invalid_grant'
  | 'refresh_in_doubt'
  | 'refresh_token_expired'
  | 'no_refresh_token'
  // A newer server may name other reasons; they are passed through as they are.
  | (string & {});

export interface TokenwardenErrorDetails {
  /** HTTP status of the answer, when there was one. */
  status?: number;
  connectionId?: string;
  cause?: unknown;
}

/**
 * Makes `instanceof Class` work across copies of this package. A worker's dependency tree may
 * hold two copies of `@tokenwarden/client` (two versions, or one bundled into a library); each
 * has its own classes, so a plain `instanceof` fails for an error thrown by the other copy. Each
 * class marks its instances with a `Symbol.for` brand that every copy shares, and answers
 * `instanceof` by the brand (as the Temporal SDK does for its failures). A subclass inherits its
 * parents' brands, so a copy's `NeedsReauthError` is a `TokenwardenError` here, and not a
 * `ForbiddenError`. A subclass of a user's own, not branded, is checked the ordinary way.
 */
function brandForInstanceOf(target: abstract new (...args: never[]) => Error, name: string): void {
  const brand = Symbol.for(`@tokenwarden/client.${name}`);
  Object.defineProperty(target.prototype, brand, { value: true });
  Object.defineProperty(target, Symbol.hasInstance, {
    value(this: typeof target, value: unknown): boolean {
      if (this !== target) return Function.prototype[Symbol.hasInstance].call(this, value);
      return typeof value === 'object' && value !== null && brand in value;
    },
  });
}

/**
 * Base class of every error the SDK throws on purpose. Match on `code` (or the subclass), never
 * on the message. Messages never contain a token or the API key.
 */
export class TokenwardenError extends Error {
  static {
    brandForInstanceOf(this, 'TokenwardenError');
  }
  /** A stable code: one of `ErrorCode`, or a code this SDK version does not know yet. */
  readonly code: ErrorCode | (string & {});
  readonly status: number | undefined;
  readonly connectionId: string | undefined;

  constructor(code: string, message: string, details: TokenwardenErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'TokenwardenError';
    this.code = code;
    this.status = details.status;
    this.connectionId = details.connectionId;
  }

  /**
   * True for errors that may go away if the same call is made again later (the SDK has already
   * retried within its bounds): `refresh_unavailable`, `store_unavailable`, `shutting_down`,
   * network errors.
   */
  get retryable(): boolean {
    return (
      this.code === 'refresh_unavailable' ||
      this.code === 'store_unavailable' ||
      this.code === 'shutting_down' ||
      this.code === 'network_error'
    );
  }
}

/** 409: only a new authorization by the connection's owner helps. */
export class NeedsReauthError extends TokenwardenError {
  static {
    brandForInstanceOf(this, 'NeedsReauthError');
  }
  readonly reason: ReauthReason;
  constructor(message: string, reason: ReauthReason, details: TokenwardenErrorDetails = {}) {
    super('needs_reauth', message, details);
    this.name = 'NeedsReauthError';
    this.reason = reason;
  }
}

/** 503: the token could not be refreshed right now; the connection is still healthy. */
export class RefreshUnavailableError extends TokenwardenError {
  static {
    brandForInstanceOf(this, 'RefreshUnavailableError');
  }
  /** How long the server asked to wait before the next attempt. */
  readonly retryAfterMs: number;
  constructor(message: string, retryAfterMs: number, details: TokenwardenErrorDetails = {}) {
    super('refresh_unavailable', message, details);
    this.name = 'RefreshUnavailableError';
    this.retryAfterMs = retryAfterMs;
  }
}

/** 404: no connection with this id (or the API key may not know it exists). */
export class NotFoundError extends TokenwardenError {
  static {
    brandForInstanceOf(this, 'NotFoundError');
  }
  constructor(message: string, details: TokenwardenErrorDetails = {}) {
    super('not_found', message, details);
    this.name = 'NotFoundError';
  }
}

/** 403: the API key is valid but not granted this connection. */
export class ForbiddenError extends TokenwardenError {
  static {
    brandForInstanceOf(this, 'ForbiddenError');
  }
  constructor(message: string, details: TokenwardenErrorDetails = {}) {
    super('forbidden', message, details);
    this.name = 'ForbiddenError';
  }
}

/** 401: the API key is missing, unknown or revoked. */
export class UnauthorizedError extends TokenwardenError {
  static {
    brandForInstanceOf(this, 'UnauthorizedError');
  }
  constructor(message: string, details: TokenwardenErrorDetails = {}) {
    super('unauthorized', message, details);
    this.name = 'UnauthorizedError';
  }
}

/** 400 (and 413): the request was malformed; `code` is what the server said. */
export class InvalidRequestError extends TokenwardenError {
  static {
    brandForInstanceOf(this, 'InvalidRequestError');
  }
  constructor(message: string, details: TokenwardenErrorDetails & { code?: string } = {}) {
    super(details.code ?? 'invalid_request', message, details);
    this.name = 'InvalidRequestError';
  }
}

/** The server could not be reached, or did not answer within the timeout. */
export class NetworkError extends TokenwardenError {
  static {
    brandForInstanceOf(this, 'NetworkError');
  }
  readonly timedOut: boolean;
  constructor(message: string, details: TokenwardenErrorDetails & { timedOut?: boolean } = {}) {
    super('network_error', message, details);
    this.name = 'NetworkError';
    this.timedOut = details.timedOut ?? false;
  }
}

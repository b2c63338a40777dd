// The `type` of every ApplicationFailure this package raises. Retry policies match on these
// (`nonRetryableErrorTypes`), and workflow code recognises them in an ActivityFailure's cause. Kept
// free of imports so that workflow code may use it. The README's table lists them row for row; a
// test fails when the two disagree.

export const FailureTypes = {
  /**
   * The connection can no longer be refreshed; its owner must authorize again. Non-retryable.
   * Details: `[{ connectionId, reason }]`.
   */
  NeedsReauth: 'TokenwardenNeedsReauth',
  /**
   * The access token could not be refreshed right now (provider down, slow or rate limiting); the
   * connection is healthy. Retryable; the next attempt waits for the server's Retry-After.
   * Details: `[{ connectionId, retryAfterMs }]`.
   */
  RefreshUnavailable: 'TokenwardenRefreshUnavailable',
  /**
   * Tokenwarden could not be reached or answered 5xx (network error, store unavailable). Retryable
   * with the retry policy's backoff. Details: `[{ connectionId, code }]`.
   */
  Unavailable: 'TokenwardenUnavailable',
  /** No connection with this id (or the API key may not see it). Non-retryable. Details: `[{ connectionId, code }]`. */
  NotFound: 'TokenwardenNotFound',
  /** The API key is missing, revoked, or not granted this connection. Non-retryable. Details: `[{ connectionId, code }]`. */
  AccessDenied: 'TokenwardenAccessDenied',
  /** Any other Tokenwarden error (a malformed request, an unknown code). Non-retryable. Details: `[{ connectionId, code }]`. */
  Error: 'TokenwardenError',
  /**
   * Raised in the workflow by `Reauthorization.run` when no `reauthorized` signal came within its
   * timeout. Non-retryable. Details: `[{ connectionId, reason }]`.
   */
  ReauthorizationTimeout: 'TokenwardenReauthorizationTimeout',
} as const;

export type FailureType = (typeof FailureTypes)[keyof typeof FailureTypes];

/** Details of a `TokenwardenNeedsReauth` or `TokenwardenReauthorizationTimeout` failure. */
export interface NeedsReauthDetails {
  connectionId: string;
  /** `invalid_grant`, `refresh_in_doubt`, `refresh_token_expired`, `no_refresh_token`, ... */
  reason: string;
}

/** Details of a `TokenwardenRefreshUnavailable` failure. */
export interface RefreshUnavailableDetails {
  connectionId: string;
  retryAfterMs: number;
}

/** Details of the other failures: the Tokenwarden error code (see docs/errors.md). */
export interface TokenwardenFailureDetails {
  connectionId: string;
  code: string;
}

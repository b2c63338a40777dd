/**
 * The one registry of Tokenwarden's error codes. Core, the HTTP API and the SDK share these codes;
 * `docs/errors.md` is checked against this table by a test.
 */
export const ERROR_CODES = {
  not_found: {
    status: 404,
    message: 'No connection with this id exists.',
    fix: 'Check the connection id; it may have been deleted.',
  },
  needs_reauth: {
    status: 409,
    message: 'The connection can no longer be refreshed; its owner must authorize again.',
    fix: 'Run the OAuth handshake again for this owner and re-import the tokens. `reason` says why.',
  },
  refresh_unavailable: {
    status: 503,
    message: 'The access token could not be refreshed right now; the connection is still healthy.',
    fix: 'Retry after `retryAfterMs`. The provider is down, slow or rate limiting.',
  },
  invalid_input: {
    status: 400,
    message: 'The request was malformed.',
    fix: 'Correct the field named in the message.',
  },
  decrypt_failed: {
    status: 500,
    message: 'A stored secret could not be decrypted.',
    fix: 'The ciphertext was tampered with, moved to another row or field, or its key is missing from the key ring.',
  },
  key_ring_invalid: {
    status: 500,
    message: 'The key ring is missing or malformed.',
    fix: 'Set TOKENWARDEN_KEYS to `<key id>:<base64 of 32 random bytes>[,...]` or point to a key file in that format.',
  },
  store_unavailable: {
    status: 503,
    message: 'The credential store cannot be reached right now.',
    fix: 'Retry shortly. Check that the database is up and reachable; nothing was changed.',
  },
  unknown_provider: {
    status: 400,
    message: 'The connection names a provider that is not configured.',
    fix: 'Configure the provider before importing or refreshing its connections.',
  },
  provider_misconfigured: {
    status: 409,
    message: 'The provider is stored with a setting this version refuses.',
    fix: 'Correct the setting named in the message (PATCH /v1/providers/{name}); until then its connections cannot be refreshed.',
  },
  invalid_request: {
    status: 400,
    message: 'The HTTP request was malformed.',
    fix: 'Send a JSON body of the documented shape (see /docs): no unknown fields, right types, ids of A-Z, a-z, 0-9, _ or -.',
  },
  uri_too_long: {
    status: 414,
    message: 'A part of the URL path is longer than the server accepts.',
    fix: 'Ids are at most 64 characters of A-Z, a-z, 0-9, _ or -; check what the URL was built from.',
  },
  headers_too_large: {
    status: 431,
    message: 'The request line and headers are larger than the server accepts.',
    fix: 'Send a shorter URL and fewer or smaller headers (Node accepts 16 KiB by default).',
  },
  request_timeout: {
    status: 408,
    message: 'The request did not arrive completely in time.',
    fix: 'Retry; send the headers and body without pausing.',
  },
  unauthorized: {
    status: 401,
    message: 'The request carries no valid API key.',
    fix: 'Send `Authorization: Bearer <api key>` with a key that exists and has not been revoked.',
  },
  forbidden: {
    status: 403,
    message: 'The API key is valid but not allowed to do this.',
    fix: 'Grant the client this action on this owner and provider, or use the admin key for admin routes.',
  },
  payload_too_large: {
    status: 413,
    message: 'The request body is larger than the server accepts.',
    fix: 'Send a smaller body; tokens and metadata have documented size limits.',
  },
  internal_error: {
    status: 500,
    message: 'The server failed unexpectedly.',
    fix: 'Retry; if it persists, look up the request id in the server log.',
  },
  shutting_down: {
    status: 503,
    message: 'This server is shutting down and did not handle the request.',
    fix: 'Retry: another replica, or this one once restarted, will answer. Nothing was changed.',
  },
  proxy_not_configured: {
    status: 400,
    message: "The connection's provider has no API origins to proxy to.",
    fix: 'Set api_base_urls on the provider (a preset fills them in for known providers).',
  },
  upstream_unreachable: {
    status: 502,
    message: "The provider's API could not be reached, or broke off its answer.",
    fix: 'Retry later; check that the api_base_urls host resolves and accepts connections from this server.',
  },
  upstream_timeout: {
    status: 504,
    message: "The provider's API did not answer in time.",
    fix: 'Retry later, or raise the proxy timeouts (connect, headers, idle body) if the API is slow by nature.',
  },
  webhook_url_refused: {
    status: 400,
    message: 'The webhook URL is not one Tokenwarden delivers to.',
    fix: 'Use an https URL on a public address, without user or password; for a receiver on a private or loopback address, or plain http, start the server with --allow-private-webhooks.',
  },
} as const satisfies Record<string, { status: number; message: string; fix: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** Why a connection needs its owner to authorize again. */
export type ReauthReason =
  /** The provider refused the refresh token (`invalid_grant` or its provider-specific twin). */
  | 'invalid_grant'
  /** A refresh may have been redeemed by a leader that died, and replaying it is unsafe or was refused. */
  | 'refresh_in_doubt'
  /** The refresh token's own lifetime has passed. */
  | 'refresh_token_expired'
  /** There is no refresh token and the access token has expired. */
  | 'no_refresh_token';

/** Base class of every error Tokenwarden throws on purpose. Messages never contain a secret. */
export class TokenwardenError extends Error {
  readonly code: ErrorCode;
  constructor(
    code: ErrorCode,
    message: string = ERROR_CODES[code].message,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'TokenwardenError';
    this.code = code;
  }
  /** HTTP status the API answers this error with. */
  get status(): number {
    return ERROR_CODES[this.code].status;
  }
}

export class NotFoundError extends TokenwardenError {
  constructor(readonly connectionId: string) {
    super('not_found', `No connection with id "${connectionId}" exists.`);
    this.name = 'NotFoundError';
  }
}

export class NeedsReauthError extends TokenwardenError {
  constructor(
    readonly connectionId: string,
    readonly reason: ReauthReason,
    detail?: string,
  ) {
    super(
      'needs_reauth',
      `Connection "${connectionId}" needs its owner to authorize again (${reason}${detail ? `: ${detail}` : ''}).`,
    );
    this.name = 'NeedsReauthError';
  }
}

export class RefreshUnavailableError extends TokenwardenError {
  constructor(
    readonly connectionId: string,
    /** How long to wait before asking again. */
    readonly retryAfterMs: number,
    /** The last error seen from the provider, as a code (e.g. `server_error`, `rate_limited`, `timeout`). */
    readonly lastError: string,
    options?: ErrorOptions,
  ) {
    super(
      'refresh_unavailable',
      `Connection "${connectionId}" could not be refreshed right now (${lastError}); retry in ${Math.ceil(retryAfterMs / 1000)} s.`,
      options,
    );
    this.name = 'RefreshUnavailableError';
  }
}

export class InvalidInputError extends TokenwardenError {
  constructor(
    /** The offending field, e.g. `access_token`. */
    readonly field: string,
    message: string,
  ) {
    super('invalid_input', `${field}: ${message}`);
    this.name = 'InvalidInputError';
  }
}

/**
 * A provider stored by an older version with a setting this one refuses (a URL with user info,
 * say): it is still listed, with the problem, but cannot be used until corrected. The message
 * names the setting and the rule, never the stored value.
 */
export class ProviderMisconfiguredError extends TokenwardenError {
  constructor(
    readonly provider: string,
    /** What is wrong, from the validation: `token_url: must be a URL without user info ...`. */
    readonly problem: string,
  ) {
    super(
      'provider_misconfigured',
      `Provider "${provider}" is stored with a setting this version refuses (${problem}); ` +
        `correct it with PATCH /v1/providers/${provider} (providers.put in code).`,
    );
    this.name = 'ProviderMisconfiguredError';
  }
}

export class DecryptError extends TokenwardenError {
  constructor(message: string) {
    super('decrypt_failed', message);
    this.name = 'DecryptError';
  }
}

export class KeyRingError extends TokenwardenError {
  constructor(message: string) {
    super('key_ring_invalid', message);
    this.name = 'KeyRingError';
  }
}

export class StoreUnavailableError extends TokenwardenError {
  constructor(cause: unknown) {
    // The driver's message may quote SQL or a connection string: it stays in `cause` only.
    super('store_unavailable', ERROR_CODES.store_unavailable.message, { cause });
    this.name = 'StoreUnavailableError';
  }
}

export class UnknownProviderError extends TokenwardenError {
  constructor(readonly provider: string) {
    super('unknown_provider', `Provider "${provider}" is not configured.`);
    this.name = 'UnknownProviderError';
  }
}

export class WebhookUrlError extends TokenwardenError {
  constructor(message: string) {
    super('webhook_url_refused', message);
    this.name = 'WebhookUrlError';
  }
}

import { ERROR_CODES, PROVIDER_NAME_PATTERN } from '@tokenwarden/core';

/**
 * JSON schemas shared by the route plugins. Strict on input: unknown fields are refused (the app's
 * Ajv does not strip them) and nothing is coerced. Response schemas double as an allow-list: a
 * field not listed here is never serialised.
 */

/**
 * An object schema with exactly these properties: a field it does not list is refused on input
 * and never serialised on output. `required` names those that must be there.
 */
export function closedObject<const P extends Record<string, unknown>>(
  properties: P,
): { type: 'object'; additionalProperties: false; properties: P };
export function closedObject<
  const P extends Record<string, unknown>,
  const R extends readonly (keyof P & string)[],
>(
  properties: P,
  required: R,
): { type: 'object'; additionalProperties: false; required: R; properties: P };
export function closedObject(properties: Record<string, unknown>, required?: readonly string[]) {
  return {
    type: 'object',
    additionalProperties: false,
    ...(required === undefined ? {} : { required }),
    properties,
  };
}

/** A list reply, `{ "<key>": [item, ...] }`; a paged one adds `next_cursor`, null on the last. */
export function listReply<const K extends string, const I>(
  key: K,
  item: I,
  { paged = false }: { paged?: boolean } = {},
) {
  const items = { type: 'array', items: item } as const;
  return paged
    ? closedObject({ [key]: items, next_cursor: nullableString }, [key, 'next_cursor'])
    : closedObject({ [key]: items }, [key]);
}

export const nullableString = { type: ['string', 'null'] } as const;

export const ID_PATTERN = '^[A-Za-z0-9_-]{1,64}$';

/** Connection ids (`conn_`) and client ids (`cli_`); the examples seed the API's test generators. */
export const idString = {
  type: 'string',
  pattern: ID_PATTERN,
  examples: ['conn_6PU6OYrg9BcDnblIg3JC', 'cli_0123456789abcdef0123'],
} as const;

/** Core's PROVIDER_NAME_PATTERN: names appear in URLs, and '*' is a grant's wildcard. */
export const providerName = {
  type: 'string',
  pattern: PROVIDER_NAME_PATTERN.source,
  examples: ['google', 'slack'],
} as const;

/** Owners and provider names as core accepts them: 1-256 characters, no surrounding space. */
export const nameString = {
  type: 'string',
  minLength: 1,
  maxLength: 256,
  pattern: '^\\S(.*\\S)?$',
  examples: ['user-42', 'acme@example.com'],
} as const;

export const isoTime = { type: 'string', format: 'date-time' } as const;
export const nullableIsoTime = { type: ['string', 'null'], format: 'date-time' } as const;

const TEN_YEARS_SECONDS = 10 * 365 * 24 * 3600;
const token = { type: 'string', minLength: 1, maxLength: 16_384, pattern: '^\\S+$' } as const;

/** The tokens of a finished OAuth handshake, as an import or a re-authorization takes them. */
export interface TokensFields {
  access_token: string;
  refresh_token?: string | null;
  expires_in?: number;
  expires_at?: string;
  refresh_expires_in?: number;
  token_type?: string;
  scope?: string;
}

/** The body properties of `TokensFields`. */
export const tokensProperties = {
  access_token: token,
  refresh_token: { ...token, type: ['string', 'null'] },
  expires_in: { type: 'number', minimum: 0, maximum: TEN_YEARS_SECONDS },
  // Core refuses both at once: they say the same thing two ways (the message says so).
  expires_at: { ...isoTime, description: 'ISO 8601 date-time. Not together with expires_in.' },
  refresh_expires_in: { type: 'number', minimum: 1, maximum: TEN_YEARS_SECONDS },
  token_type: { type: 'string', pattern: '^[A-Za-z0-9_.-]{1,64}$' },
  scope: { type: 'string', minLength: 1, maxLength: 4096 },
} as const;

/** `TokensFields` as core's import and re-authorization take them. */
export function tokensInput(body: TokensFields) {
  return {
    accessToken: body.access_token,
    refreshToken: body.refresh_token,
    expiresIn: body.expires_in,
    expiresAt: body.expires_at,
    refreshExpiresIn: body.refresh_expires_in,
    tokenType: body.token_type,
    scope: body.scope,
  };
}

export const idParams = closedObject({ id: idString }, ['id']);

/** The codes the API answers with: core's `invalid_input` is answered `invalid_request`. */
const API_ERROR_CODES = Object.keys(ERROR_CODES).filter((code) => code !== 'invalid_input');

/** The API's one error shape, `{error, message}`, with the extras two codes add. */
export const errorBody = closedObject(
  {
    error: {
      type: 'string',
      enum: API_ERROR_CODES,
      description: 'Stable code, see docs/errors.md.',
    },
    message: { type: 'string' },
    reason: { type: 'string', description: 'needs_reauth only: why.' },
    retry_after: { type: 'integer', minimum: 1, description: 'refresh_unavailable only: seconds.' },
  },
  ['error', 'message'],
);

/** What each error status means, for the OpenAPI document's response descriptions. */
const ERROR_STATUS_MEANING: Record<number, string> = {
  400: 'invalid_request (or unknown_provider): the request is malformed or names nothing valid.',
  401: 'unauthorized: no API key, or an unknown or revoked one.',
  403: 'forbidden: the key is valid but has no grant (or admin right) for this.',
  404: 'not_found: no such resource, or none the caller holds a grant on.',
  409: 'needs_reauth: the connection needs a new authorization (`reason` says why).',
  413: 'payload_too_large: the body is over the limit.',
  414: "uri_too_long: a path parameter is over the router's limit.",
  500: 'internal_error (or decrypt_failed, key_ring_invalid): a server fault; see its log.',
  503: 'Retryable (Retry-After): refresh_unavailable, store_unavailable or shutting_down.',
};

/** The error replies a route can give, for the OpenAPI document (and the serializer). */
export function errorResponses(...statuses: number[]): Record<number, typeof errorBody> {
  return Object.fromEntries(
    statuses.map((status) => [
      status,
      { ...errorBody, description: ERROR_STATUS_MEANING[status] ?? 'An error.' },
    ]),
  );
}

/** Cursor pagination: `limit` is a string in the query (nothing is coerced), 1-200. */
export const limitQuery = {
  type: 'string',
  pattern: '^(?:[1-9]|[1-9][0-9]|1[0-9][0-9]|200)$',
} as const;

export function parseLimit(value: string | undefined, fallback = 50): number {
  return value === undefined ? fallback : Number(value);
}

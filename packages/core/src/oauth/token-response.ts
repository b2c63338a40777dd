import type { ResolvedProvider } from '../provider/settings.ts';

/**
 * Turns what real token endpoints answer into what RFC 6749 §5 says they answer, before
 * oauth4webapi validates it. Every rewrite is driven by the provider's settings or is a
 * lenient reading that cannot turn an error into tokens:
 *
 * - the body is read with a size limit (a larger one is not a token response);
 * - a form-encoded body (GitHub without `Accept: application/json`) is read as JSON;
 * - HTTP 200 carrying an error (Slack `{"ok":false,"error":...}`, GitHub `error=...`) becomes
 *   the 400 error response it means — it is never taken for tokens;
 * - error bodies in other shapes (HubSpot `{"status":"BAD_REFRESH_TOKEN","message":...}`, Zoom
 *   `{"reason":...}`) become `{error, error_description}`;
 * - the tokens under `provider.tokensAt` (Slack `authed_user`) are lifted to the top level;
 * - a numeric-string `expires_in` becomes a number; one that is no lifetime at all (`"abc"`, -5)
 *   is dropped and marked (`EXPIRES_IN_IGNORED`), so that the tokens beside it — a rotated
 *   refresh token among them — are still taken; a missing one is derived from a Salesforce
 *   `issued_at` and the provider's default lifetime;
 * - `id_token` is dropped: Tokenwarden brokers tokens, it does not sign anyone in, and the
 *   issuer checks an ID token needs are not configured for plain OAuth providers.
 */
export async function normaliseTokenResponse(
  response: Response,
  provider: Pick<ResolvedProvider, 'tokensAt' | 'bearerTokenTypes' | 'defaultAccessTtlSeconds'>,
  maxBytes = MAX_RESPONSE_BYTES,
): Promise<Response> {
  const text = await readLimited(response, maxBytes);
  const headers = new Headers(response.headers);
  headers.delete('content-length');
  headers.delete('content-encoding');
  if (text === undefined) {
    headers.set('content-type', 'text/plain');
    return new Response('response too large', { status: response.status, headers });
  }
  const passThrough = () => new Response(text, { status: response.status, headers });
  const body = parseBody(text, headers.get('content-type'));
  if (body === undefined) return passThrough();

  const ok = response.status >= 200 && response.status < 300;
  const error = errorOf(body, ok);
  if (error !== undefined) {
    headers.set('content-type', 'application/json');
    return new Response(JSON.stringify(error), {
      status: ok ? 400 : response.status,
      headers,
    });
  }
  if (!ok) return passThrough();

  let tokens: Record<string, unknown> = body;
  const nested = provider.tokensAt === undefined ? undefined : body[provider.tokensAt];
  if (isObject(nested) && typeof nested.access_token === 'string') {
    tokens = { ...nested, scope: nested.scope ?? body.scope };
  }
  tokens = { ...tokens };
  delete tokens.id_token;
  // "No new refresh token" and "no lifetime" said with null or "" mean the same as saying nothing.
  for (const field of ['refresh_token', 'expires_in', 'refresh_token_expires_in', 'scope']) {
    if (tokens[field] === null || tokens[field] === '') delete tokens[field];
  }
  if (typeof tokens.token_type === 'string') {
    const type = tokens.token_type.toLowerCase();
    if (provider.bearerTokenTypes.some((t) => t.toLowerCase() === type)) {
      tokens.token_type = 'Bearer';
    }
  }
  for (const field of ['expires_in', 'refresh_token_expires_in'] as const) {
    const value = tokens[field];
    if (typeof value === 'string' && /^\d{1,12}$/.test(value.trim())) tokens[field] = Number(value);
  }
  if (tokens.expires_in !== undefined && lifetime(tokens.expires_in) === undefined) {
    delete tokens.expires_in;
    tokens[EXPIRES_IN_IGNORED] = true;
  }
  if (tokens.expires_in === undefined) {
    const left = lifetimeFromIssuedAt(tokens.issued_at, provider.defaultAccessTtlSeconds);
    if (left !== undefined) tokens.expires_in = left;
  }
  headers.set('content-type', 'application/json');
  return new Response(JSON.stringify(tokens), { status: response.status, headers });
}

/** A provider's answer (a token response, a discovery document) larger than this is not one. */
export const MAX_RESPONSE_BYTES = 256 * 1024;

/**
 * The member a normalised response carries when the provider's `expires_in` was dropped as no
 * lifetime: the access token then lives the provider's default, and the refresh says so.
 */
export const EXPIRES_IN_IGNORED = 'tokenwarden_expires_in_ignored';

/** Expiries beyond this are treated as absent rather than trusted. */
const MAX_LIFETIME_SECONDS = 10 * 365 * 24 * 3600;

/** A lifetime in seconds as a token response should give one; undefined for anything else. */
export function lifetime(value: unknown): number | undefined {
  return typeof value === 'number' &&
    Number.isFinite(value) &&
    value > 0 &&
    value <= MAX_LIFETIME_SECONDS
    ? value
    : undefined;
}

/**
 * Salesforce answers `issued_at` (epoch milliseconds, as a string) and no `expires_in`: the
 * token lives the configured session lifetime from then. Implausible values are ignored.
 */
function lifetimeFromIssuedAt(issuedAt: unknown, ttlSeconds: number): number | undefined {
  if (typeof issuedAt !== 'string' && typeof issuedAt !== 'number') return undefined;
  if (!/^\d{12,14}$/.test(String(issuedAt).trim())) return undefined;
  const ageSeconds = Math.max(0, (Date.now() - Number(issuedAt)) / 1000);
  if (ageSeconds >= ttlSeconds) return undefined;
  return Math.floor(ttlSeconds - ageSeconds);
}

function parseBody(text: string, contentType: string | null): Record<string, unknown> | undefined {
  if (/^application\/x-www-form-urlencoded\b/i.test(contentType ?? '')) {
    return Object.fromEntries(new URLSearchParams(text));
  }
  try {
    const body: unknown = JSON.parse(text);
    return isObject(body) ? body : undefined;
  } catch {
    return undefined;
  }
}

/** The RFC 6749 §5.2 error this body carries, if it carries one. */
function errorOf(
  body: Record<string, unknown>,
  ok: boolean,
): { error: string; error_description?: string } | undefined {
  const description = firstString(body.error_description, body.reason, body.message);
  let code: string | undefined;
  if (typeof body.error === 'string' && body.error !== '') code = body.error;
  else if (body.error !== undefined && body.error !== null) code = 'provider_error';
  else if (body.ok === false) code = 'provider_error';
  else if (!ok) code = firstString(body.status, body.error_code, body.errorCode);
  if (code === undefined) return undefined;
  return description === undefined
    ? { error: code }
    : { error: code, error_description: description.slice(0, 200) };
}

function firstString(...values: unknown[]): string | undefined {
  for (const value of values) {
    if (typeof value === 'string' && value !== '' && !/^\d+$/.test(value)) return value;
  }
  return undefined;
}

/** Reads at most `maxBytes` of the body; undefined if there is more (the rest is not read). */
export async function readLimited(
  response: Response,
  maxBytes = MAX_RESPONSE_BYTES,
): Promise<string | undefined> {
  if (!response.body) return '';
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel().catch(() => undefined);
      return undefined;
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

import * as oauth from 'oauth4webapi';
import { isLoopback, type ResolvedProvider } from './provider.ts';

/** What became of one refresh-token redemption. */
export type RefreshOutcome =
  | {
      kind: 'tokens';
      accessToken: string;
      tokenType: string;
      /** Seconds; undefined when the provider did not say (or said nonsense). */
      expiresIn: number | undefined;
      /** Undefined when the provider did not issue a new one: keep the old (invariant 7). */
      refreshToken: string | undefined;
      refreshExpiresIn: number | undefined;
      scope: string | undefined;
    }
  /** The provider refused the refresh token itself: only a new authorization helps. */
  | { kind: 'refused'; error: string }
  /**
   * No verdict on the refresh token. `inDoubt` means the provider may have redeemed it anyway
   * (the request left and no answer we can trust came back).
   */
  | { kind: 'failed'; error: string; inDoubt: boolean; retryAfterMs: number | undefined };

/** Error codes with which providers say "this refresh token is dead" (RFC 6749 §5.2 and quirks). */
const REFUSAL_CODES = new Set([
  'invalid_grant',
  'invalid_refresh_token', // Slack, as HTTP 200
  'bad_refresh_token', // GitHub, as HTTP 200
  'expired_refresh_token',
  'token_revoked',
]);

/** A token response larger than this is not a token response. */
const MAX_RESPONSE_BYTES = 256 * 1024;
/** Expiries beyond this are treated as absent rather than trusted. */
const MAX_LIFETIME_SECONDS = 10 * 365 * 24 * 3600;

export interface GrantOptions {
  fetch?: typeof fetch;
  signal?: AbortSignal;
}

/**
 * The refresh token grant, RFC 6749 §6, through oauth4webapi, with the provider's quirks
 * normalised first (see `normaliseTokenResponse`). Never throws for provider behaviour: every
 * answer, or the lack of one, becomes a `RefreshOutcome`.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-6
 */
export async function refreshTokenGrant(
  provider: ResolvedProvider,
  refreshToken: string,
  options: GrantOptions = {},
): Promise<RefreshOutcome> {
  const as: oauth.AuthorizationServer = {
    issuer: new URL(provider.tokenUrl).origin,
    token_endpoint: provider.tokenUrl,
  };
  const client: oauth.Client = { client_id: provider.clientId };
  const fetchImpl = options.fetch ?? fetch;
  let response: Response;
  try {
    response = await oauth.refreshTokenGrantRequest(
      as,
      client,
      clientAuthentication(provider),
      refreshToken,
      {
        signal: options.signal,
        [oauth.customFetch]: async (url, init) =>
          normaliseTokenResponse(await fetchImpl(url, init)),
        [oauth.allowInsecureRequests]: isLoopback(new URL(provider.tokenUrl).hostname),
      },
    );
  } catch (error) {
    return transportFailure(error);
  }

  if (response.status === 429) {
    return {
      kind: 'failed',
      error: 'rate_limited',
      inDoubt: false,
      retryAfterMs: retryAfter(response),
    };
  }
  if (response.status >= 500) {
    return {
      kind: 'failed',
      error: 'server_error',
      inDoubt: false,
      retryAfterMs: retryAfter(response),
    };
  }
  try {
    const body = await oauth.processRefreshTokenResponse(as, client, response);
    return {
      kind: 'tokens',
      accessToken: body.access_token,
      tokenType: body.token_type,
      expiresIn: lifetime(body.expires_in),
      refreshToken: nonEmptyString(body.refresh_token),
      refreshExpiresIn: lifetime(body.refresh_token_expires_in),
      scope: nonEmptyString(body.scope),
    };
  } catch (error) {
    if (error instanceof oauth.ResponseBodyError) {
      if (REFUSAL_CODES.has(error.error)) return { kind: 'refused', error: error.error };
      // invalid_client, invalid_request, ...: the configuration is wrong, not the refresh token,
      // and the provider did not redeem it.
      return {
        kind: 'failed',
        error: safeCode(error.error),
        inDoubt: false,
        retryAfterMs: undefined,
      };
    }
    // A 2xx we cannot read may still have redeemed (and rotated) the refresh token. Any other
    // status is an answer without a redemption (401 with a WWW-Authenticate challenge: RFC 6749
    // §5.2 invalid_client).
    const ok = response.status >= 200 && response.status < 300;
    if (ok)
      return {
        kind: 'failed',
        error: 'malformed_response',
        inDoubt: true,
        retryAfterMs: undefined,
      };
    const code = response.status === 401 ? 'invalid_client' : `http_${response.status}`;
    return { kind: 'failed', error: code, inDoubt: false, retryAfterMs: undefined };
  }
}

function clientAuthentication(provider: ResolvedProvider): oauth.ClientAuth {
  const secret = provider.clientSecret ?? '';
  return provider.clientAuth === 'client_secret_post'
    ? oauth.ClientSecretPost(secret)
    : oauth.ClientSecretBasic(secret);
}

/**
 * Rewrites provider quirks into RFC 6749 before oauth4webapi sees the response:
 * - HTTP 200 carrying an error body (Slack `{"ok":false,"error":...}`, GitHub `error=`) becomes
 *   the 400 error response it means;
 * - a numeric string `expires_in` (mezzio, Salesforce-style) becomes a number.
 * Bodies are read with a size limit; anything else passes through untouched.
 */
export async function normaliseTokenResponse(response: Response): Promise<Response> {
  const text = await readLimited(response);
  if (text === undefined) {
    return new Response('response too large', {
      status: response.status,
      headers: response.headers,
    });
  }
  const passThrough = () =>
    new Response(text, { status: response.status, headers: response.headers });
  if (response.status !== 200) return passThrough();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return passThrough();
  }
  if (!isObject(body)) return passThrough();
  const error =
    typeof body.error === 'string' ? body.error : body.ok === false ? 'invalid_grant' : undefined;
  if (error !== undefined) {
    return Response.json(
      { error, error_description: body.error_description },
      { status: 400, headers: { 'cache-control': 'no-store' } },
    );
  }
  for (const field of ['expires_in', 'refresh_token_expires_in'] as const) {
    const value = body[field];
    if (typeof value === 'string' && /^\d+$/.test(value.trim())) body[field] = Number(value);
  }
  return Response.json(body, { status: 200, headers: response.headers });
}

async function readLimited(response: Response): Promise<string | undefined> {
  if (!response.body) return '';
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > MAX_RESPONSE_BYTES) {
      await reader.cancel();
      return undefined;
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function transportFailure(error: unknown): RefreshOutcome {
  const name = error instanceof Error ? error.name : '';
  if (name === 'AbortError' || name === 'TimeoutError') {
    return { kind: 'failed', error: 'timeout', inDoubt: true, retryAfterMs: undefined };
  }
  // These fail before a byte is sent: the provider cannot have seen the refresh token.
  const cause = (error as { cause?: { code?: string } } | undefined)?.cause?.code;
  const notSent = cause === 'ECONNREFUSED' || cause === 'ENOTFOUND' || cause === 'EAI_AGAIN';
  return { kind: 'failed', error: 'network_error', inDoubt: !notSent, retryAfterMs: undefined };
}

/** RFC 9110 §10.2.3: delay-seconds or an HTTP date. */
export function retryAfter(response: Response): number | undefined {
  const value = response.headers.get('retry-after');
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

function lifetime(value: unknown): number | undefined {
  return typeof value === 'number' &&
    Number.isFinite(value) &&
    value > 0 &&
    value <= MAX_LIFETIME_SECONDS
    ? value
    : undefined;
}

function nonEmptyString(value: unknown): string | undefined {
  return typeof value === 'string' && value.length > 0 ? value : undefined;
}

/** Provider error codes end up in logs and the database; keep them to a short safe token. */
function safeCode(code: string): string {
  return /^[\w.-]{1,64}$/.test(code) ? code : 'provider_error';
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

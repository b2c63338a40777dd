import * as oauth from 'oauth4webapi';
import { clientAuthentication, jsonBodyFetch } from './client-auth.ts';
import { providerFetch } from './provider-transport.ts';
import type { ResolvedProvider } from '../provider/settings.ts';
import { isLoopback } from '../provider/urls.ts';
import { EXPIRES_IN_IGNORED, lifetime, normaliseTokenResponse } from './token-response.ts';

/** What became of one token request, whatever the grant. Never carries provider prose. */
export type TokenOutcome =
  | {
      kind: 'tokens';
      accessToken: string;
      tokenType: string;
      /** Seconds; undefined when the provider did not say (or said nonsense). */
      expiresIn: number | undefined;
      /** The provider said nonsense (`"abc"`, -5): the default lifetime applies, and is reported. */
      expiresInIgnored: boolean;
      /** Undefined when the provider did not issue a new one: keep the old (invariant 7). */
      refreshToken: string | undefined;
      refreshExpiresIn: number | undefined;
      scope: string | undefined;
    }
  /** The provider refused the grant itself (a dead refresh token, a spent code). */
  | { kind: 'refused'; error: string }
  /**
   * No verdict on the grant. `inDoubt` means the provider may have redeemed it anyway (the
   * request left and no answer we can trust came back).
   */
  | { kind: 'failed'; error: string; inDoubt: boolean; retryAfterMs: number | undefined };

export interface GrantOptions {
  /** Default: `providerFetch`. */
  fetch?: typeof fetch;
  /** Default: the provider's `requestTimeoutMs`. */
  signal?: AbortSignal;
}

/**
 * RFC 6749 §5.2: the one standard code that says "this grant is dead". Providers' own codes
 * for it are data: each provider's `deadTokenErrors` (its preset's, in the catalog).
 */
const REFUSAL_CODES = new Set(['invalid_grant']);

/** Tokens longer than this (or with spaces or control characters) are not stored. */
const MAX_TOKEN_LENGTH = 16 * 1024;

/** oauth4webapi's view of the provider, the client, and the request options every call shares. */
export interface EndpointContext {
  as: oauth.AuthorizationServer;
  client: oauth.Client;
  auth: oauth.ClientAuth;
  requestOptions: {
    signal: AbortSignal;
    [oauth.customFetch]: (
      url: string,
      init: oauth.CustomFetchOptions<string, unknown>,
    ) => Promise<Response>;
    [oauth.allowInsecureRequests]: boolean;
  };
}

/**
 * The code of a request that never left: oauth4webapi refused to build it, or the transport
 * refused to send it (a URL with credentials; for a `fetch` passed in, a port it blocks). The
 * provider saw nothing; only the provider's configuration can fix it.
 */
export const NOT_SENT = 'provider_misconfigured';

/**
 * Builds the request with `request` and sends it. What goes wrong before an answer comes is a
 * `failed` outcome, in doubt only when the request may have reached the provider: a failure
 * raised before it was handed to `fetch`, or one `fetch` raises before connecting, is not.
 */
export async function sendRequest(
  provider: ResolvedProvider,
  options: GrantOptions,
  request: (ctx: EndpointContext) => Promise<Response>,
): Promise<
  { ctx: EndpointContext; response: Response } | Extract<TokenOutcome, { kind: 'failed' }>
> {
  let handedToFetch = false;
  try {
    const as: oauth.AuthorizationServer = {
      issuer: new URL(provider.tokenUrl).origin,
      token_endpoint: provider.tokenUrl,
      revocation_endpoint: provider.revocationUrl,
      introspection_endpoint: provider.introspectionUrl,
    };
    const fetchImpl = options.fetch ?? providerFetch;
    const send: typeof fetch =
      provider.clientAuth === 'client_secret_json' ? jsonBodyFetch(fetchImpl) : fetchImpl;
    const insecure = [provider.tokenUrl, provider.revocationUrl, provider.introspectionUrl].some(
      (url) => url !== undefined && isLoopback(new URL(url).hostname),
    );
    const ctx: EndpointContext = {
      as,
      client: { client_id: provider.clientId },
      // oauth4webapi's factories throw for a missing secret: inside the try, so it is not sent.
      auth: clientAuthentication(provider),
      requestOptions: {
        signal: options.signal ?? AbortSignal.timeout(provider.requestTimeoutMs),
        [oauth.customFetch]: async (url, init) => {
          handedToFetch = true;
          return normaliseTokenResponse(await send(url, init as RequestInit), provider);
        },
        [oauth.allowInsecureRequests]: insecure,
      },
    };
    return { ctx, response: await request(ctx) };
  } catch (error) {
    if (!handedToFetch)
      return { kind: 'failed', error: NOT_SENT, inDoubt: false, retryAfterMs: undefined };
    return transportFailure(error);
  }
}

/**
 * Sends one token request (`request` builds it with oauth4webapi) and turns every answer, or
 * the lack of one, into a `TokenOutcome`. Never throws for provider behaviour.
 */
export async function exchange(
  provider: ResolvedProvider,
  options: GrantOptions,
  request: (ctx: EndpointContext) => Promise<Response>,
): Promise<TokenOutcome> {
  const sent = await sendRequest(provider, options, request);
  if ('kind' in sent) return sent;
  const { ctx, response } = sent;
  const busy = await tryAgainLater(response);
  if (busy) return { kind: 'failed', ...busy, inDoubt: false };
  try {
    const body = await oauth.processGenericTokenEndpointResponse(ctx.as, ctx.client, response);
    const accessToken = tokenValue(body.access_token);
    const refreshToken = body.refresh_token === undefined ? null : tokenValue(body.refresh_token);
    if (accessToken === undefined || refreshToken === undefined) {
      return malformed();
    }
    if (!/^[\w.-]{1,64}$/.test(body.token_type)) return malformed();
    const scope = typeof body.scope === 'string' && body.scope !== '' ? body.scope : undefined;
    if (scope !== undefined && scope.length > 4096) return malformed();
    return {
      kind: 'tokens',
      accessToken,
      tokenType: body.token_type === 'bearer' ? 'Bearer' : body.token_type,
      expiresIn: lifetime(body.expires_in),
      expiresInIgnored: body[EXPIRES_IN_IGNORED] === true,
      refreshToken: refreshToken ?? undefined,
      refreshExpiresIn: lifetime(body.refresh_token_expires_in),
      scope,
    };
  } catch (error) {
    if (error instanceof oauth.ResponseBodyError) {
      return classifyError(provider, error.error, error.error_description);
    }
    // A 2xx we cannot read may still have redeemed (and rotated) the grant. Any other status is
    // an answer without a redemption (401 with a WWW-Authenticate challenge: invalid_client).
    if (response.status >= 200 && response.status < 300) return malformed();
    const code = response.status === 401 ? 'invalid_client' : `http_${response.status}`;
    return { kind: 'failed', error: code, inDoubt: false, retryAfterMs: undefined };
  }
}

/**
 * The provider's error, read through its settings: transient messages first (try again), then
 * the codes and messages that mean the grant is dead, then everything else (a configuration
 * problem such as invalid_client: the grant was not redeemed).
 */
export function classifyError(
  provider: Pick<
    ResolvedProvider,
    'deadTokenErrors' | 'deadTokenMessages' | 'transientErrorMessages'
  >,
  code: string,
  description: string | undefined,
): TokenOutcome {
  const text = (description ?? '').toLowerCase();
  const says = (fragments: string[]) => fragments.some((f) => text.includes(f.toLowerCase()));
  const error = safeCode(code);
  if (says(provider.transientErrorMessages)) {
    return { kind: 'failed', error, inDoubt: false, retryAfterMs: undefined };
  }
  const lower = code.toLowerCase();
  if (
    REFUSAL_CODES.has(lower) ||
    provider.deadTokenErrors.some((c) => c.toLowerCase() === lower) ||
    says(provider.deadTokenMessages)
  ) {
    return { kind: 'refused', error };
  }
  return { kind: 'failed', error, inDoubt: false, retryAfterMs: undefined };
}

function malformed(): TokenOutcome {
  return { kind: 'failed', error: 'malformed_response', inDoubt: true, retryAfterMs: undefined };
}

export function transportFailure(error: unknown): Extract<TokenOutcome, { kind: 'failed' }> {
  const name = error instanceof Error ? error.name : '';
  if (name === 'AbortError' || name === 'TimeoutError') {
    return { kind: 'failed', error: 'timeout', inDoubt: true, retryAfterMs: undefined };
  }
  const cause = (error as { cause?: { code?: string; message?: string } } | undefined)?.cause;
  // Refused before a connection is opened: a URL with credentials (a TypeError of its own, no
  // cause), a URL that cannot be parsed, and for the WHATWG `fetch` a port it blocks.
  const refused =
    error instanceof TypeError &&
    (cause === undefined || cause.message === 'bad port' || cause.code === 'ERR_INVALID_URL');
  if (refused) return { kind: 'failed', error: NOT_SENT, inDoubt: false, retryAfterMs: undefined };
  // These fail before a byte is sent: the provider cannot have seen the grant.
  const notSent = cause?.code !== undefined && NOT_CONNECTED.has(cause.code);
  return { kind: 'failed', error: 'network_error', inDoubt: !notSent, retryAfterMs: undefined };
}

/** Connection failures before anything was written to the provider: refused, no such host. */
const NOT_CONNECTED = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN']);

/**
 * 429 or 5xx: no answer on the grant, try again later (not before Retry-After). The body is
 * dropped unread. Undefined for any other status.
 */
export async function tryAgainLater(
  response: Response,
): Promise<{ error: string; retryAfterMs: number | undefined } | undefined> {
  if (response.status !== 429 && response.status < 500) return undefined;
  await response.body?.cancel().catch(() => undefined);
  return {
    error: response.status === 429 ? 'rate_limited' : 'server_error',
    retryAfterMs: retryAfter(response),
  };
}

/** RFC 9110 §10.2.3: delay-seconds or an HTTP date. */
export function retryAfter(response: Response): number | undefined {
  const value = response.headers.get('retry-after');
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Math.min(Number(value.trim()), 86_400) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.min(86_400_000, Math.max(0, date - Date.now()));
}

/** A token as RFC 6749 Appendix A allows it, bounded; undefined when it is not one. */
function tokenValue(value: unknown): string | undefined {
  return typeof value === 'string' &&
    value.length <= MAX_TOKEN_LENGTH &&
    /^[\x21-\x7E]+$/.test(value)
    ? value
    : undefined;
}

/** Provider error codes end up in logs and the database; keep them to a short safe token. */
export function safeCode(code: string): string {
  return /^[\w.-]{1,64}$/.test(code) ? code : 'provider_error';
}

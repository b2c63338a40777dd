// The authorization endpoint (RFC 6749 §4.1.1) with PKCE (RFC 7636): it approves at once, as if
// the user had logged in and consented, and keeps each code for the code exchange (§4.1.3).
import { createHash, randomBytes } from 'node:crypto';
import type { Answer } from './http.ts';
import type { ResolvedProviderOptions } from './types.ts';

/** RFC 6749 §4.1.2: codes are short-lived and single-use. */
const CODE_TTL_MS = 60_000;

interface PendingCode {
  clientId: string;
  redirectUri: string;
  challenge: string | undefined;
  scope: string | undefined;
  expiresAt: number;
  /** Set once exchanged; a second exchange revokes what the first one issued. */
  family?: string;
}

export type CodeCheck =
  | { ok: true; scope: string | undefined; settle(family: string): void }
  | { ok: false; answer: Answer; reusedFamily?: string };

export class AuthorizationCodes {
  readonly #codes = new Map<string, PendingCode>();

  /**
   * GET /authorize: a redirect to `redirect_uri` with `code` and `state` (and RFC 9207 `iss`),
   * or with `error`. Requests that cannot be redirected safely (unknown client, no redirect
   * URI) get a 400 page instead, as §4.1.2.1 requires.
   */
  authorize(
    query: URLSearchParams,
    options: ResolvedProviderOptions,
    issuer: string,
    now: number,
  ): Answer {
    const redirectUri = query.get('redirect_uri');
    if (query.get('client_id') !== options.clientId || !redirectUri || !isUrl(redirectUri)) {
      return { status: 400, body: { error: 'invalid_request' } };
    }
    const back = (params: Record<string, string>): Answer => {
      const url = new URL(redirectUri);
      for (const [key, value] of Object.entries(params)) url.searchParams.set(key, value);
      const state = query.get('state');
      if (state !== null) url.searchParams.set('state', state);
      url.searchParams.set('iss', issuer);
      return { status: 302, body: {}, headers: { Location: url.href } };
    };
    if (query.get('response_type') !== 'code') return back({ error: 'unsupported_response_type' });
    const challenge = query.get('code_challenge') ?? undefined;
    const method = query.get('code_challenge_method');
    if (challenge !== undefined && method !== 'S256') {
      return back({ error: 'invalid_request', error_description: 'S256 only' });
    }
    if (challenge === undefined && options.requirePkce) {
      return back({ error: 'invalid_request', error_description: 'PKCE required' });
    }
    if (options.authorizeError) return back({ error: options.authorizeError });
    const code = `code_${randomBytes(24).toString('base64url')}`;
    this.#codes.set(code, {
      clientId: options.clientId,
      redirectUri,
      challenge,
      scope: query.get('scope') ?? undefined,
      expiresAt: now + CODE_TTL_MS,
    });
    return back({ code });
  }

  /** RFC 6749 §4.1.3 and RFC 7636 §4.6, for POST /token with grant_type=authorization_code. */
  check(form: URLSearchParams, now: number): CodeCheck {
    const refuse = (description: string, reusedFamily?: string): CodeCheck => ({
      ok: false,
      answer: {
        status: 400,
        body: { error: 'invalid_grant', error_description: description },
      },
      reusedFamily,
    });
    const pending = this.#codes.get(form.get('code') ?? '');
    if (!pending) return refuse('unknown code');
    if (pending.family !== undefined) return refuse('code already used', pending.family);
    if (now >= pending.expiresAt) return refuse('code expired');
    if (form.get('redirect_uri') !== pending.redirectUri) return refuse('redirect_uri mismatch');
    const verifier = form.get('code_verifier');
    if (pending.challenge !== undefined) {
      if (!verifier) return refuse('code_verifier required');
      const computed = createHash('sha256').update(verifier).digest('base64url');
      if (computed !== pending.challenge) return refuse('code_verifier does not match');
    }
    return {
      ok: true,
      scope: pending.scope,
      settle: (family) => {
        pending.family = family;
      },
    };
  }
}

function isUrl(value: string): boolean {
  try {
    new URL(value);
    return true;
  } catch {
    return false;
  }
}

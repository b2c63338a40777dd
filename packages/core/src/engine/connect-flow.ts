import { createHash } from 'node:crypto';
import type { ConnectionInfo } from '../credential.ts';
import { decrypt, encrypt, type KeyRing } from '../crypto/index.ts';
import { InvalidInputError, TokenwardenError, UnknownProviderError } from '../errors.ts';
import {
  authorizationCodeGrant,
  checkRedirectUri,
  createAuthorizationRequest,
  parseAuthorizationResponse,
} from '../oauth/authorization-code-grant.ts';
import { revokeToken } from '../oauth/revocation.ts';
import type { ConnectSessionStore } from '../store/connect-session-store.ts';
import { guardStore } from '../store/guard-store.ts';
import type { CredentialBroker } from './credential-broker.ts';

export interface ConnectFlowOptions {
  broker: CredentialBroker;
  /** Usually `store.connect` of the broker's store. */
  store: ConnectSessionStore;
  keyRing: KeyRing;
  /**
   * The redirect URI registered at every provider: Tokenwarden's own callback, which calls
   * `complete` (e.g. `https://tokenwarden.example/v1/connect/callback`).
   */
  callbackUri: string;
  /** How long a session waits for its callback. Default 10 minutes. */
  ttlMs?: number;
  fetch?: typeof fetch;
}

export interface StartConnectInput {
  provider: string;
  owner: string;
  /** Default: the provider's scopes. */
  scopes?: string[];
  /** Where the browser goes once it is over, with `connection_id=` or `error=`. */
  redirectUri: string;
  /** Re-authorize this connection (same id) instead of creating one. */
  connectionId?: string;
}

export type ConnectResult =
  | {
      kind: 'connected';
      connection: ConnectionInfo;
      /** The connection existed (`connectionId` at start) and was re-authorized. */
      reauthorized: boolean;
      /** The backend's redirect URI with `connection_id` (and `state` untouched: none). */
      redirectTo: string;
    }
  /**
   * The provider said no, the code exchange failed, or the tokens could not be stored (then they
   * were revoked at the provider where it can): nothing was stored.
   */
  | { kind: 'failed'; error: string; redirectTo: string };

/**
 * The connect flow for backends that want Tokenwarden to run the OAuth handshake: `start`
 * builds the authorization URL (state + PKCE S256, RFC 6749 §4.1.1, RFC 7636) and keeps what the
 * callback needs — the state only as a hash, the verifier sealed — for 10 minutes; `complete`
 * takes that session exactly once (a replayed, expired or unknown state is refused before
 * anything is sent), exchanges the code with the session's own verifier, and creates the
 * connection or re-authorizes the one named at start. Provider errors come back as `failed`,
 * for the backend's redirect URI as `error=`.
 *
 * ```ts
 * const connect = new ConnectFlow({ broker, store: store.connect, keyRing, callbackUri });
 * const { authorizeUrl } = await connect.start({ provider: 'google', owner: 'user-42', redirectUri });
 * // ... the provider redirects the browser to callbackUri:
 * const result = await connect.complete(new URL(request.url).searchParams);
 * reply.redirect(result.redirectTo);
 * ```
 */
export class ConnectFlow {
  readonly #broker: CredentialBroker;
  readonly #store: ConnectSessionStore;
  readonly #keyRing: KeyRing;
  readonly #callbackUri: string;
  readonly #ttlMs: number;
  readonly #fetch: typeof fetch | undefined;

  constructor(options: ConnectFlowOptions) {
    this.#broker = options.broker;
    this.#store = guardStore(options.store);
    this.#keyRing = options.keyRing;
    this.#callbackUri = checkRedirectUri(options.callbackUri);
    this.#ttlMs = options.ttlMs ?? 10 * 60_000;
    this.#fetch = options.fetch;
  }

  /** Throws InvalidInputError, UnknownProviderError, NotFoundError (for `connectionId`). */
  async start(input: StartConnectInput): Promise<{ authorizeUrl: string; expiresAt: number }> {
    if (typeof input !== 'object' || input === null) {
      throw new InvalidInputError('session', 'must be an object');
    }
    const owner = name('owner', input.owner);
    const redirectUri = checkRedirectUri(input.redirectUri);
    const provider = await this.#broker.providers.get(name('provider', input.provider));
    if (!provider) throw new UnknownProviderError(input.provider);
    if (provider.grantType !== 'refresh_token') {
      throw new InvalidInputError('provider', 'machine-token providers have no connect flow');
    }
    let connectionId: string | null = null;
    if (input.connectionId !== undefined) {
      const existing = await this.#broker.getConnection(input.connectionId);
      if (existing.provider !== provider.name || existing.owner !== owner) {
        throw new InvalidInputError('connection_id', 'belongs to another provider or owner');
      }
      connectionId = existing.id;
    }
    const request = await createAuthorizationRequest(provider, {
      redirectUri: this.#callbackUri,
      scopes: input.scopes,
    });
    const stateHash = hashState(request.state);
    const session = await this.#store.insertConnectSession({
      stateHash,
      provider: provider.name,
      owner,
      scopes: input.scopes ?? provider.scopes,
      redirectUri,
      callbackUri: this.#callbackUri,
      codeVerifier: encrypt(this.#keyRing, request.codeVerifier, verifierData(stateHash)),
      connectionId,
      ttlMs: this.#ttlMs,
    });
    return { authorizeUrl: request.url, expiresAt: session.expiresAt };
  }

  /**
   * The callback's query parameters. Throws InvalidInputError (field `state`) when they match no
   * live session — unknown, expired, already used or missing — since there is then no redirect
   * URI to send the browser to; every other outcome is a `ConnectResult`.
   */
  async complete(parameters: URLSearchParams): Promise<ConnectResult> {
    const states = parameters.getAll('state');
    const state = states[0];
    if (states.length !== 1 || !state || state.length > 512) {
      throw new InvalidInputError('state', 'is missing or malformed');
    }
    const stateHash = hashState(state);
    const session = await this.#store.takeConnectSession(stateHash);
    if (!session) throw new InvalidInputError('state', 'is unknown, expired or already used');
    const fail = (error: string): ConnectResult => ({
      kind: 'failed',
      error,
      redirectTo: withParams(session.redirectUri, { error }),
    });
    const provider = await this.#broker.providers.get(session.provider);
    if (!provider) return fail('unknown_provider');
    const response = parseAuthorizationResponse(provider, parameters, state);
    if (response.kind !== 'code') return fail(response.error);
    // The session is spent from here on: every failure must still reach the backend as error=.
    let codeVerifier: string;
    try {
      codeVerifier = decrypt(this.#keyRing, session.codeVerifier, verifierData(stateHash));
    } catch (error) {
      return fail(errorCode(error));
    }
    const outcome = await authorizationCodeGrant(
      provider,
      { code: response.code, codeVerifier, redirectUri: session.callbackUri },
      { fetch: this.#fetch },
    );
    if (outcome.kind !== 'tokens') return fail(outcome.error);
    const tokens = {
      accessToken: outcome.accessToken,
      refreshToken: outcome.refreshToken ?? null,
      expiresIn: outcome.expiresIn,
      refreshExpiresIn: outcome.refreshExpiresIn,
      tokenType: outcome.tokenType,
      scope: outcome.scope ?? (session.scopes.length > 0 ? session.scopes.join(' ') : undefined),
    };
    let connection: ConnectionInfo;
    try {
      connection =
        session.connectionId === null
          ? await this.#broker.importConnection({
              provider: session.provider,
              owner: session.owner,
              ...tokens,
            })
          : await this.#broker.reauthorize(session.connectionId, {
              owner: session.owner,
              ...tokens,
            });
    } catch (error) {
      // Tokens nobody holds must not stay alive at the provider: revoke them, best effort.
      const revoke = (token: string, hint: 'refresh_token' | 'access_token') =>
        revokeToken(provider, token, hint, { fetch: this.#fetch }).catch(() => undefined);
      if (tokens.refreshToken !== null) await revoke(tokens.refreshToken, 'refresh_token');
      await revoke(tokens.accessToken, 'access_token');
      return fail(errorCode(error));
    }
    return {
      kind: 'connected',
      connection,
      reauthorized: session.connectionId !== null,
      redirectTo: withParams(session.redirectUri, { connection_id: connection.id }),
    };
  }
}

/** Only the hash is stored: a database reader cannot complete someone else's flow. */
function hashState(state: string): string {
  return createHash('sha256').update(state).digest('base64url');
}

/** Binds a sealed verifier to its session, apart from every credential and provider field. */
function verifierData(stateHash: string): string {
  return `tokenwarden/connect/${stateHash}/code_verifier`;
}

function withParams(uri: string, params: Record<string, string>): string {
  const url = new URL(uri);
  for (const [key, value] of Object.entries(params)) url.searchParams.set(key, value);
  return url.href;
}

function name(field: string, value: unknown): string {
  if (typeof value !== 'string' || value === '' || value.length > 256 || value.trim() !== value) {
    throw new InvalidInputError(field, 'must be a non-empty string of at most 256 characters');
  }
  return value;
}

/** A stable code for the backend's `error=`: ours where we have one, never a message. */
function errorCode(error: unknown): string {
  return error instanceof TokenwardenError ? error.code : 'server_error';
}

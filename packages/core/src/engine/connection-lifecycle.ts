import { randomBytes } from 'node:crypto';
import { connectionInfo, type ConnectionInfo, type CredentialRecord } from '../credential.ts';
import { openField, sealField } from '../crypto/index.ts';
import { InvalidInputError, NotFoundError, RefreshUnavailableError } from '../errors.ts';
import { clientCredentialsGrant } from '../oauth/client-credentials-grant.ts';
import { introspectToken, type IntrospectionOutcome } from '../oauth/introspection.ts';
import type { ResolvedProvider } from '../provider/settings.ts';
import { revokeToken, type RevocationOutcome } from '../oauth/revocation.ts';
import { idleMs, type LeaderKit } from '../protocol/leader-kit.ts';
import { nextRefreshIn } from './backoff.ts';
import type { ConnectionEvent } from './events.ts';
import {
  validateImport,
  validateMachineConnection,
  type ImportConnectionInput,
  type MachineConnectionInput,
  type ValidImport,
} from './import-input.ts';

/** What the lifecycle shares with the broker. */
export interface LifecycleOptions {
  /** The store, key ring, `fetch` and refresh timing the leaders use too. */
  kit: LeaderKit;
  /** The provider named, or a throw (`UnknownProviderError`, a store failure). */
  provider(name: string): Promise<ResolvedProvider>;
  emitConnection(event: ConnectionEvent): void;
}

/** The tokens a re-authorization brings: an import without provider, owner or metadata. */
export type ReauthorizeInput = Omit<ImportConnectionInput, 'provider' | 'owner' | 'metadata'> & {
  /** When given, must be the connection's owner. */
  owner?: string;
};

/**
 * Everything done to a connection apart from handing out its token: import, machine
 * connections, re-authorization, introspection, revocation at the provider, reading and
 * deleting. See `CredentialBroker` for what each promises.
 */
export class ConnectionLifecycle {
  readonly #kit: LeaderKit;
  readonly #options: LifecycleOptions;

  constructor(options: LifecycleOptions) {
    this.#kit = options.kit;
    this.#options = options;
  }

  async importConnection(input: ImportConnectionInput): Promise<ConnectionInfo> {
    const valid = validateImport(input);
    const provider = await this.#options.provider(valid.provider);
    return this.#insert(newConnectionId(), provider, valid);
  }

  async createMachineConnection(input: MachineConnectionInput): Promise<ConnectionInfo> {
    const valid = validateMachineConnection(input);
    const provider = await this.#options.provider(valid.provider);
    if (provider.grantType !== 'client_credentials') {
      throw new InvalidInputError('provider', 'does not use the client_credentials grant');
    }
    const id = newConnectionId();
    const breaker = this.#kit.breaker(provider.name);
    const outcome = await clientCredentialsGrant(provider, {
      fetch: this.#kit.fetch,
      scope: valid.scope ?? undefined,
    });
    if (outcome.kind === 'failed') {
      breaker.onFailure(outcome.retryAfterMs);
      throw new RefreshUnavailableError(id, outcome.retryAfterMs ?? 1_000, outcome.error);
    }
    breaker.onSuccess();
    return this.#insert(id, provider, {
      ...valid,
      accessToken: outcome.accessToken,
      refreshToken: null,
      tokenType: outcome.tokenType,
      scope: outcome.scope ?? valid.scope,
      expiresInMs: outcome.expiresIn === undefined ? undefined : outcome.expiresIn * 1000,
      expiresAtMs: undefined,
      refreshExpiresInMs: null,
    });
  }

  async reauthorize(
    id: string,
    input: ReauthorizeInput,
  ): Promise<ConnectionInfo & { recovered: boolean }> {
    checkId(id);
    const { store } = this.#kit;
    for (let attempt = 0; ; attempt++) {
      const snapshot = await store.getCredential(id);
      if (!snapshot) throw new NotFoundError(id);
      const before = snapshot.record;
      if (input?.owner !== undefined && input.owner !== before.owner) {
        throw new InvalidInputError('owner', 'is not the owner of this connection');
      }
      const valid = validateImport({ ...input, provider: before.provider, owner: before.owner });
      const provider = await this.#options.provider(before.provider);
      const sealed = await this.#seal(id, provider, valid);
      const after = await store.reauthorize(id, before.version, sealed);
      if (!after) {
        // A refresh committed in between: read again (a handful of tries, never a loop).
        if (attempt >= 5) throw new RefreshUnavailableError(id, 100, 'concurrent_change');
        continue;
      }
      const recovered = before.status !== 'active';
      if (recovered) {
        this.#options.emitConnection({
          type: 'recovered',
          connectionId: id,
          provider: before.provider,
          version: after.record.version,
          previousStatus: before.status as 'needs_reauth' | 'revoked',
          previousReason: before.statusReason,
        });
      }
      return { ...connectionInfo(after.record), recovered };
    }
  }

  async getConnection(id: string): Promise<ConnectionInfo> {
    const snapshot = await this.#kit.store.getCredential(checkId(id));
    if (!snapshot) throw new NotFoundError(id);
    return connectionInfo(snapshot.record);
  }

  async deleteConnection(id: string): Promise<void> {
    if (!(await this.#kit.store.deleteCredential(checkId(id)))) throw new NotFoundError(id);
  }

  async introspect(
    id: string,
    which: 'access_token' | 'refresh_token',
  ): Promise<IntrospectionOutcome> {
    if (which !== 'access_token' && which !== 'refresh_token') {
      throw new InvalidInputError('token', 'must be access_token or refresh_token');
    }
    const { provider, token } = await this.#openToken(id, () => which);
    return introspectToken(provider, token, which, { fetch: this.#kit.fetch });
  }

  async revokeAtProvider(id: string): Promise<RevocationOutcome> {
    // The refresh token takes the access tokens with it (RFC 7009 §2.1).
    const { provider, token, which } = await this.#openToken(id, (record) =>
      record.refreshToken === null ? 'access_token' : 'refresh_token',
    );
    return revokeToken(provider, token, which, { fetch: this.#kit.fetch });
  }

  /** One of the connection's tokens, opened, and its provider; `pick` chooses which, from the row. */
  async #openToken(
    id: string,
    pick: (record: CredentialRecord) => 'access_token' | 'refresh_token',
  ) {
    const snapshot = await this.#kit.store.getCredential(checkId(id));
    if (!snapshot) throw new NotFoundError(id);
    const { record } = snapshot;
    const which = pick(record);
    const sealed = which === 'access_token' ? record.accessToken : record.refreshToken;
    if (sealed === null) {
      throw new InvalidInputError('token', 'this connection has no refresh token');
    }
    const provider = await this.#options.provider(record.provider);
    return {
      provider,
      token: openField(this.#kit.keyRing, sealed, { credentialId: id, field: which }),
      which,
    };
  }

  /** Stores validated tokens, sealed, as the new connection `id`. */
  async #insert(
    id: string,
    provider: ResolvedProvider,
    valid: ValidImport,
  ): Promise<ConnectionInfo> {
    const { record } = await this.#kit.store.insertCredential({
      id,
      provider: valid.provider,
      owner: valid.owner,
      metadata: valid.metadata,
      ...(await this.#seal(id, provider, valid)),
    });
    return connectionInfo(record);
  }

  /** Seals validated tokens for connection `id` and works out their lifetimes. */
  async #seal(id: string, provider: ResolvedProvider, valid: ValidImport) {
    const { keyRing, store } = this.#kit;
    const machine = provider.grantType === 'client_credentials';
    if (machine && valid.refreshToken !== null) {
      throw new InvalidInputError('refresh_token', 'a client_credentials provider issues none');
    }
    const accessTtlMs =
      valid.expiresInMs ??
      (valid.expiresAtMs !== undefined
        ? valid.expiresAtMs - (await store.now())
        : provider.defaultAccessTtlSeconds * 1000);
    const seal = (plaintext: string, field: 'access_token' | 'refresh_token') =>
      sealField(keyRing, plaintext, { credentialId: id, field });
    const refreshable = machine || valid.refreshToken !== null;
    return {
      keyId: keyRing.activeKeyId,
      accessToken: seal(valid.accessToken, 'access_token'),
      refreshToken: valid.refreshToken === null ? null : seal(valid.refreshToken, 'refresh_token'),
      tokenType: valid.tokenType,
      scope: valid.scope,
      accessTtlMs,
      // A provider with an absolute refresh token lifetime (Atlassian) dates it from here;
      // rotations keep that expiry.
      refreshTtlMs:
        valid.refreshExpiresInMs ??
        (valid.refreshToken !== null && provider.refreshTokenMaxSeconds !== undefined
          ? provider.refreshTokenMaxSeconds * 1000
          : null),
      refreshInMs: refreshable
        ? nextRefreshIn(accessTtlMs, idleMs(provider), this.#kit.proactive)
        : null,
    };
  }
}

/** `conn_` and 120 random bits. */
function newConnectionId(): string {
  return `conn_${randomBytes(15).toString('base64url')}`;
}

/** Connection ids are opaque but bounded: no path characters, no control characters. */
export function checkId(id: unknown): string {
  if (typeof id !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(id)) {
    throw new InvalidInputError(
      'connection_id',
      'must be 1-64 characters of A-Z, a-z, 0-9, _ or -',
    );
  }
  return id;
}

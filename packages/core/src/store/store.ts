import type { CredentialRecord, CredentialSnapshot, CredentialState } from '../credential.ts';

/**
 * Where credentials live. One interface, one adapter per database (`sqlite/`, `postgres/`), and
 * one conformance suite (`@tokenwarden/testkit`) that every adapter passes.
 *
 * Every time the store reasons about (`now`, lease expiry, backoff) comes from the database's
 * clock, never the caller's (invariant 2): callers pass durations, the store adds them to its own
 * `now`. The store sees only sealed secrets; sealing and opening is the engine's job.
 *
 * The lifecycle changes write their webhook event (`webhooks/events.ts`) to the outbox in the
 * same transaction: a connection created, deleted, re-authorized or turned `needs_reauth`
 * always; a refresh failing or recovered when the engine says so (`reportFailing`,
 * `reportRecovered`).
 */
export interface Store {
  /** Creates or upgrades the schema. Safe to call from several processes at once. */
  migrate(): Promise<void>;

  /** The database clock, epoch milliseconds. */
  now(): Promise<number>;

  insertCredential(credential: NewCredential): Promise<CredentialSnapshot>;
  getCredential(id: string): Promise<CredentialSnapshot | undefined>;
  deleteCredential(id: string): Promise<boolean>;

  /**
   * Invariant 1: take the refresh lease if the credential is still at `expectedVersion`, active,
   * and nobody holds an unexpired lease. Returns the leased record, or undefined if someone else
   * won (or the version moved on).
   */
  acquireLease(id: string, lease: LeaseRequest): Promise<CredentialSnapshot | undefined>;

  /** Invariant 6: record which refresh token the lease holder is about to redeem. */
  recordIntent(id: string, leaseId: string, intentHash: string): Promise<boolean>;

  /** Invariant 4: write new tokens only if `leaseId` still holds the lease; bumps the version. */
  commitRefresh(
    id: string,
    leaseId: string,
    tokens: RefreshedTokens,
  ): Promise<CredentialSnapshot | undefined>;

  /** Fenced like `commitRefresh`: the credential can no longer be refreshed. Bumps the version. */
  commitNeedsReauth(
    id: string,
    leaseId: string,
    failure: { reason: string; lastError: string },
  ): Promise<CredentialSnapshot | undefined>;

  /**
   * Fenced: a refresh attempt failed without a verdict on the refresh token. Releases the lease,
   * counts the failure and sets the next attempt `retryAfterMs` from now. `keepIntent` leaves the
   * intent in place when the outcome is in doubt, so the next leader takes the recovery path.
   */
  commitFailure(
    id: string,
    leaseId: string,
    failure: {
      lastError: string;
      retryAfterMs: number;
      keepIntent: boolean;
      /** The provider failed without a verdict: a run of failures starts (`failingSince`). */
      providerFailed?: boolean;
      /** Write `connection.refresh_failing` (and remember it was written, `failingReportedAt`). */
      reportFailing?: boolean;
    },
  ): Promise<CredentialSnapshot | undefined>;

  /**
   * Re-authorization: replaces the tokens of a credential still at `expectedVersion`, whatever
   * its status, and makes it `active`. Bumps the version and clears the lease, the intent and the
   * failure bookkeeping in the same statement, so a leader still redeeming the old refresh token
   * is fenced out (its commit matches no lease). Undefined if the version moved on (or it is gone).
   */
  reauthorize(
    id: string,
    expectedVersion: number,
    tokens: ReauthorizedTokens,
  ): Promise<CredentialSnapshot | undefined>;

  /**
   * Resolves when the credential's version or lease holder differs from `seen` (or it is gone),
   * or after `timeoutMs`, whichever comes first. Adapters with notifications wake early (Postgres:
   * for every change but a lease taken where there was none, which nobody waits for: callers wait
   * behind a lease); the rest poll. Invariant 5: this is how waiters learn the leader's result
   * without redeeming.
   *
   * Resolves with the credential's state when the store learned, without a read, a state with a
   * newer version than `seen` (Postgres: the notification of a commit carries it): the caller
   * decides from that as from a read. Otherwise it resolves with undefined, only a hint that it
   * is worth reading the row again: a notification may name a state that is already gone, so the
   * caller re-reads and decides from what it reads. Pass the record `getCredential` returned (or
   * the state this returned), or a copy of it, as `seen` where there is one: its `readMark` tells
   * the store how it was read (Postgres: whether every change since then has been heard, which
   * spares a read).
   */
  waitForChange(
    id: string,
    seen: Seen,
    timeoutMs: number,
  ): Promise<CredentialSnapshot<CredentialState> | undefined>;

  /**
   * Invariant 10: take the refresh lease on up to `limit` credentials whose `refresh_at` has
   * passed (active, not leased, not backing off), oldest first. Several schedulers claiming at
   * once get disjoint sets (Postgres: `FOR UPDATE SKIP LOCKED`).
   */
  claimDue(request: ClaimRequest): Promise<CredentialSnapshot[]>;

  /** Key rotation: a page of credentials whose secrets are not sealed under `keyId`. */
  listNotUnderKey(
    keyId: string,
    afterId: string | null,
    limit: number,
  ): Promise<CredentialRecord[]>;

  /**
   * The start-up key check: every key id that seals a credential, each with the id of one
   * credential sealed under it (so the check can open a real ciphertext).
   */
  keysInUse(): Promise<Array<{ keyId: string; credentialId: string }>>;

  /** Key rotation: replace the sealed secrets if the credential is still at `version`. */
  resealSecrets(id: string, version: number, secrets: SealedSecrets): Promise<boolean>;

  close(): Promise<void>;
}

/** What a waiter saw: the state it waits to change, and how it was read, when the store knows. */
export type Seen = Pick<CredentialState, 'version' | 'leaseId' | 'readMark'>;

export interface SealedSecrets {
  keyId: string;
  accessToken: string;
  refreshToken: string | null;
}

export interface NewCredential extends SealedSecrets {
  id: string;
  provider: string;
  owner: string;
  tokenType: string;
  scope: string | null;
  /** Lifetimes relative to the database clock at insertion. */
  accessTtlMs: number;
  refreshTtlMs: number | null;
  refreshInMs: number | null;
  metadata: string;
}

export interface ReauthorizedTokens extends SealedSecrets {
  tokenType: string;
  scope: string | null;
  accessTtlMs: number;
  /** Null: the new refresh token has no known expiry. */
  refreshTtlMs: number | null;
  refreshInMs: number | null;
}

export interface ClaimRequest {
  limit: number;
  /** One lease id for the whole batch: the fence is (id, lease id), unique per credential. */
  leaseId: string;
  leaseMs: number;
  /** Providers not to claim for now (circuit open, or no free slot in this process). */
  excludeProviders: string[];
}

export interface LeaseRequest {
  expectedVersion: number;
  leaseId: string;
  leaseMs: number;
}

export interface RefreshedTokens extends SealedSecrets {
  tokenType: string;
  scope: string | null;
  accessTtlMs: number;
  /** Undefined keeps the current refresh token expiry (the provider said nothing new). */
  refreshTtlMs: number | null | undefined;
  /** When the scheduler should refresh next, from now; null for never. */
  refreshInMs: number | null;
  /** Write `connection.refresh_recovered`: `connection.refresh_failing` was written before. */
  reportRecovered?: boolean;
  /** The committing span's `traceparent` (`CredentialsTable.commitTrace`), if tracing. */
  commitTrace?: string | null;
}

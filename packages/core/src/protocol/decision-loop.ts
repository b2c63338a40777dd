import { randomUUID } from 'node:crypto';
import type { AccessToken, CredentialSnapshot, CredentialState } from '../credential.ts';
import {
  NeedsReauthError,
  NotFoundError,
  RefreshUnavailableError,
  type ReauthReason,
} from '../errors.ts';
import type { ResolvedProvider } from '../provider/settings.ts';
import { lead } from './leader.ts';
import { REPLAY_DEFERRED, type LeaderKit } from './leader-kit.ts';
import { ForcedRefreshes } from './forced-refreshes.ts';
import { OpenedAccessTokens } from './opened-tokens.ts';
import {
  handedOut,
  leaseAttempt,
  waitBehindLease,
  wokenBy,
  type HandOutOutcome,
} from '../tracing/protocol-spans.ts';

/** What the loop needs beside the leader kit. */
export interface DecisionLoopOptions {
  kit: LeaderKit;
  /** How long one call may wait for a refresh (its own or another's). */
  maxWaitMs: number;
  /** A token with less than this left is refreshed before it is handed out. */
  expirySkewMs: number;
  /** The provider named, or a throw (`UnknownProviderError`, a store failure). */
  provider(name: string): Promise<ResolvedProvider>;
  onContention: ((kind: 'waited' | 'lease_conflict', connectionId: string) => void) | undefined;
  /** Opened access tokens kept (`CredentialBrokerOptions.openedTokenCache`). */
  openedTokenCache?: number | undefined;
}

/**
 * The decision loop every caller of `getAccessToken` / `reportRejected` runs (docs/protocol.md):
 * hand out the current token, back off after a failure, wait for someone else's refresh, wait
 * for the circuit breaker, or take the lease and lead. Bounded by `maxWaitMs`.
 */
export class DecisionLoop {
  readonly #kit: LeaderKit;
  readonly #options: DecisionLoopOptions;
  readonly #opened: OpenedAccessTokens;
  readonly #forced: ForcedRefreshes;

  constructor(options: DecisionLoopOptions) {
    this.#kit = options.kit;
    this.#options = options;
    this.#opened = new OpenedAccessTokens(options.kit.keyRing, options.openedTokenCache);
    this.#forced = new ForcedRefreshes(options.kit.clock);
  }

  /**
   * A token with more than `minTtlMs` left — or, for `rejectedVersion` still current (invariant
   * 9), a token of a newer version.
   */
  async obtain(id: string, minTtlMs: number, rejectedVersion?: number): Promise<AccessToken> {
    const { store, clock } = this.#kit;
    const deadline = clock.monotonic() + this.#options.maxWaitMs;
    let startVersion: number | undefined;
    /** A newer state the store learned while we waited, without reading (see waitForChange). */
    let heard: CredentialSnapshot<CredentialState> | undefined;
    /** Traced: the wait behind another's lease, ended by the state seen next. */
    let waiting:
      { span: ReturnType<typeof waitBehindLease>; version: number; since: number } | undefined;
    for (;;) {
      const snapshot = heard ?? (await store.getCredential(id));
      heard = undefined;
      if (!snapshot) throw new NotFoundError(id);
      const { record, now } = snapshot;
      startVersion ??= record.version;
      if (waiting) {
        wokenBy(waiting.span, record, waiting.version);
        const ms = clock.monotonic() - waiting.since;
        this.#kit.measure({ kind: 'lease_wait', provider: record.provider, ms });
        waiting = undefined;
      }
      const served: HandOutOutcome = record.version === startVersion ? 'current' : 'woken';
      if (record.status !== 'active') {
        throw new NeedsReauthError(id, (record.statusReason ?? 'invalid_grant') as ReauthReason);
      }
      const rejected = record.version === rejectedVersion;
      // Short of the lifetime wanted, but usable: handed out rather than waited for while no
      // refresh can happen now (a backoff, a refusing breaker), unless it was reported refused.
      const stillValid = !rejected && record.accessExpiresAt > now;
      // Invariant 5: once a refresh has happened since we started, its token is the answer.
      const wanted = record.version === startVersion ? this.#forced.wanted(id, minTtlMs) : 0;
      const tokenLeft = record.accessExpiresAt - now;
      if (!rejected && tokenLeft > wanted) return this.#handOut(record, served);
      // Good enough for a caller without a min_ttl: only this caller's wish asks for a refresh.
      const forced = !rejected && tokenLeft > this.#forced.wanted(id, this.#options.expirySkewMs);

      const waitLeft = deadline - clock.monotonic();
      // A replay deferred until the token stops working (invariant 6): expired or rejected, it is due.
      const deferredReplayDue = !stillValid && record.lastError === REPLAY_DEFERRED;
      if (record.nextAttemptAt !== null && record.nextAttemptAt > now && !deferredReplayDue) {
        // Backing off after a failure: the current token stays in service while it is valid.
        if (stillValid) return this.#handOut(record, served);
        const wait = record.nextAttemptAt - now;
        if (wait > waitLeft) {
          // The provider's own Retry-After is held by the breaker, not by the row.
          const breakerWait = this.#kit.breaker(record.provider).refusingForMs;
          throw new RefreshUnavailableError(
            id,
            Math.max(wait, breakerWait),
            record.lastError ?? 'backing_off',
          );
        }
        await clock.sleep(wait);
        continue;
      }
      if (record.leaseUntil !== null && record.leaseUntil > now) {
        // Someone else is refreshing: wait for their result, never redeem ourselves.
        if (waitLeft <= 0) {
          throw new RefreshUnavailableError(id, record.leaseUntil - now, 'refresh_in_progress');
        }
        this.#options.onContention?.('waited', id);
        waiting = {
          span: waitBehindLease(record),
          version: record.version,
          since: clock.monotonic(),
        };
        // The record itself as what was seen: a store may know how it was read (KyselyStore).
        heard = await store.waitForChange(
          id,
          record,
          Math.min(waitLeft, record.leaseUntil - now + 5),
        );
        continue;
      }
      if (waitLeft <= 0) throw new RefreshUnavailableError(id, 1000, record.lastError ?? 'timeout');
      const provider = await this.#options.provider(record.provider); // before the lease: it may throw
      const breaker = this.#kit.breaker(record.provider);
      const admission = breaker.admit();
      if (!admission.admitted) {
        // The provider is failing for everyone: do not add to it.
        if (stillValid) return this.#handOut(record, served);
        if (admission.retryAfterMs > waitLeft) {
          throw new RefreshUnavailableError(
            id,
            admission.retryAfterMs,
            record.lastError ?? 'provider_unavailable',
          );
        }
        await clock.sleep(admission.retryAfterMs);
        continue;
      }

      if (forced && !this.#forced.tryForce(id)) {
        breaker.release();
        return this.#handOut(record, served);
      }
      const leased = await leaseAttempt(id, () =>
        store.acquireLease(id, {
          expectedVersion: record.version,
          leaseId: randomUUID(),
          leaseMs: this.#kit.leaseMs,
        }),
      );
      if (!leased) {
        this.#options.onContention?.('lease_conflict', id);
        breaker.release();
        continue; // lost the race: the next read shows the winner's lease
      }
      const committed = await lead(this.#kit, provider, {
        snapshot: leased,
        takenAt: clock.monotonic(),
        rejected,
      });
      const after = committed?.record;
      if (after?.status === 'active' && after.version !== record.version) {
        this.#forced.issued(id, after.accessExpiresAt - committed!.now);
        return this.#handOut(after, 'refreshed');
      }
    }
  }

  #handOut(record: CredentialState, outcome: HandOutOutcome): AccessToken {
    handedOut(record, outcome);
    return {
      connectionId: record.id,
      accessToken: this.#opened.open(record),
      tokenType: record.tokenType,
      expiresAt: record.accessExpiresAt,
      version: record.version,
      scope: record.scope,
    };
  }
}

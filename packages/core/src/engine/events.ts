import type { ReauthReason } from '../errors.ts';

/** What the broker reports about refreshes. Never carries a token. */
/**
 * A duration an operator alerts on (`CredentialBrokerOptions.onMeasure`), in milliseconds:
 * - `lease_wait`: a caller waited behind another's lease, until the next state was seen;
 * - `expiry_to_refresh`: from the access token's expiry to the commit of its successor (negative:
 *   refreshed before it expired, as the scheduler means to);
 * - `scheduler_lag`: from a credential's `refresh_at` to its claim by a scheduler.
 * Reported in the span of the work it measures, when tracing (for exemplars).
 */
export interface ProtocolMeasure {
  kind: 'lease_wait' | 'expiry_to_refresh' | 'scheduler_lag';
  provider: string;
  ms: number;
}

export type BrokerEvent =
  | {
      type: 'refreshed';
      connectionId: string;
      provider: string;
      version: number;
      recovered: boolean;
      /**
       * The provider's `expires_in` was no lifetime ("abc", -5): the new tokens were kept, the
       * access token given the provider's default lifetime.
       */
      expiresInIgnored?: true;
    }
  | {
      type: 'needs_reauth';
      connectionId: string;
      provider: string;
      version: number;
      reason: ReauthReason;
      error: string;
    }
  | {
      type: 'refresh_failed';
      connectionId: string;
      provider: string;
      error: string;
      inDoubt: boolean;
      retryAfterMs: number;
    };

/**
 * Test seams for the crash points of the design brief: the broker awaits `step` right after each
 * protocol step, so a test can kill the process exactly there.
 */
export type ProtocolStep = 'lease_acquired' | 'intent_recorded' | 'response_received' | 'committed';

/**
 * A connection that needed re-authorization (or was revoked) is active again with new tokens,
 * same id, bumped version. Delivered to `onConnectionEvent` (every `BrokerEvent` is delivered
 * there too), so that listeners of `onEvent` written for `BrokerEvent` keep compiling.
 */
export interface RecoveredEvent {
  type: 'recovered';
  connectionId: string;
  provider: string;
  version: number;
  previousStatus: 'needs_reauth' | 'revoked';
  /** The reason it needed re-authorization. */
  previousReason: string | null;
}

export type ConnectionEvent = BrokerEvent | RecoveredEvent;

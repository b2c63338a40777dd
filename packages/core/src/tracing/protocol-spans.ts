/**
 * One helper per protocol step (docs/protocol.md, "Traces"), so the protocol code calls one line
 * per step and reads as before. Each is the API's no-op when no SDK is registered.
 */

import { SpanKind, trace, type Span } from '@opentelemetry/api';
import type { AccessToken, CredentialRecord, CredentialState } from '../credential.ts';
import { ATTR, inSpan, linkTo, markSpan, startSpan, traceparentOf } from './spans.ts';

/** How a hand-out was served: the token there, one this caller refreshed, or another's. */
export type HandOutOutcome = 'current' | 'refreshed' | 'woken';

/**
 * `getAccessToken` / `reportRejected`: the span of one caller's hand-out, whether it is served
 * by its own decision loop or by joining another caller's (single flight).
 */
export function handOut(
  id: string,
  rejectedVersion: number | undefined,
  obtain: () => Promise<AccessToken>,
): Promise<AccessToken> {
  const attributes =
    rejectedVersion === undefined
      ? { [ATTR.connection]: id }
      : { [ATTR.connection]: id, 'tokenwarden.rejected_version': rejectedVersion };
  return inSpan('tokenwarden.hand_out', attributes, async (span) => {
    const token = await obtain();
    span.setAttribute(ATTR.version, token.version);
    return token;
  });
}

/** Called by the loop as it hands `record` out: what the hand-out span says about it. */
export function handedOut(record: CredentialState, outcome: HandOutOutcome): void {
  const span = trace.getActiveSpan();
  if (!span?.isRecording()) return;
  span.setAttribute(ATTR.provider, record.provider);
  span.setAttribute(ATTR.outcome, outcome);
  const owner = (record as Partial<CredentialRecord>).owner;
  if (owner !== undefined) span.setAttribute(ATTR.owner, owner);
}

/**
 * Someone else holds the lease (another caller, another replica): the lease attempt is `held`,
 * and the wait for their result starts. End it with `wokenBy` once the next state is known.
 */
export function waitBehindLease(record: CredentialState): Span | undefined {
  if (!trace.getActiveSpan()?.isRecording()) return undefined;
  const attributes = { [ATTR.connection]: record.id, [ATTR.version]: record.version };
  markSpan('tokenwarden.lease', { ...attributes, [ATTR.outcome]: 'held' });
  return startSpan('tokenwarden.wait', attributes);
}

/**
 * The wait is over and `record` is what the waiter saw next: a new version links to the span
 * that committed it (in whichever process), carried in the row or the notification.
 */
export function wokenBy(wait: Span | undefined, record: CredentialState, seen: number): void {
  if (!wait) return;
  const changed = record.version !== seen;
  wait.setAttribute(ATTR.outcome, changed ? 'new_version' : 'lease_changed');
  if (changed) {
    wait.setAttribute(ATTR.version, record.version);
    for (const link of linkTo(record.commitTrace)) wait.addLink(link);
  }
  wait.end();
}

/** The conditional UPDATE that takes the lease (invariant 1): `won` or `lost`. */
export async function leaseAttempt<T>(id: string, acquire: () => Promise<T | undefined>) {
  const span = startSpan('tokenwarden.lease', { [ATTR.connection]: id });
  try {
    const leased = await acquire();
    span.setAttribute(ATTR.outcome, leased ? 'won' : 'lost');
    return leased;
  } finally {
    span.end();
  }
}

/** The intent recorded before the refresh token is sent (invariant 6). */
export async function intent(id: string, record: () => Promise<boolean>): Promise<boolean> {
  const span = startSpan('tokenwarden.intent', { [ATTR.connection]: id });
  try {
    const recorded = await record();
    span.setAttribute(ATTR.outcome, recorded ? 'recorded' : 'lease_lost');
    return recorded;
  } finally {
    span.end();
  }
}

/**
 * A fenced write (invariant 4). `write` gets the span's `traceparent` to store beside the
 * tokens, so that waiters elsewhere can link to this very span.
 */
export function fencedCommit<T extends { record: { version: number } } | undefined>(
  id: string,
  kind: 'tokens' | 'needs_reauth' | 'failure',
  write: (traceparent: string | null) => Promise<T>,
): Promise<T> {
  return inSpan(
    'tokenwarden.commit',
    { [ATTR.connection]: id, 'tokenwarden.commit.kind': kind },
    async (span) => {
      const committed = await write(traceparentOf(span));
      span.setAttribute(ATTR.outcome, committed ? 'committed' : 'fenced_out');
      if (committed) span.setAttribute(ATTR.version, committed.record.version);
      return committed;
    },
  );
}

/**
 * The scheduler's claim of due credentials (invariant 10): how many it got. A claim that got
 * none (most of them: the scheduler looks every second) leaves no span, or an idle server would
 * export a trace a second.
 */
export async function schedulerClaim<T>(claim: () => Promise<T[]>): Promise<T[]> {
  const startTime = Date.now();
  const claimed = await claim();
  if (claimed.length > 0) {
    markSpan('tokenwarden.scheduler.claim', { [ATTR.count]: claimed.length }, startTime);
  }
  return claimed;
}

/**
 * One proactive refresh, a trace of its own: the leader's steps are its children, and its lag
 * (how long after its `refresh_at` the row was claimed) is on it.
 */
export function scheduledRefresh<T>(
  { record, now }: { record: CredentialRecord; now: number },
  refresh: () => Promise<T>,
): Promise<T> {
  const attributes = {
    [ATTR.connection]: record.id,
    [ATTR.provider]: record.provider,
    [ATTR.owner]: record.owner,
    [ATTR.version]: record.version,
    'tokenwarden.scheduler.lag_ms': record.refreshAt === null ? 0 : now - record.refreshAt,
  };
  return inSpan('tokenwarden.scheduler.refresh', attributes, refresh, { root: true });
}

/** One webhook delivery attempt, a trace of its own: which endpoint, event and attempt, and how it went. */
export function webhookDelivery<T extends { status: string; lastStatus: number | null }>(
  delivery: { endpointId: string; eventId: string; attempts: number },
  send: () => Promise<T>,
): Promise<T> {
  const attributes = {
    'tokenwarden.webhook.endpoint_id': delivery.endpointId,
    'tokenwarden.webhook.event_id': delivery.eventId,
    'tokenwarden.webhook.attempt': delivery.attempts + 1,
  };
  return inSpan(
    'tokenwarden.webhook.deliver',
    attributes,
    async (span) => {
      const outcome = await send();
      span.setAttribute(ATTR.outcome, outcome.status);
      if (outcome.lastStatus !== null) span.setAttribute(ATTR.httpStatus, outcome.lastStatus);
      return outcome;
    },
    { root: true, kind: SpanKind.CLIENT },
  );
}

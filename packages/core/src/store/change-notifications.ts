/**
 * How a waiter learns that a credential changed (invariant 5): what a database with push
 * notifications offers (`ChangeNotifications`, Postgres LISTEN/NOTIFY), and the wait itself
 * (`waitForChange`), which polls besides, so that a lost notification costs latency, never
 * correctness. See docs/protocol.md, "Postgres wake-ups".
 */

import type { Clock } from '../clock.ts';
import type { CredentialSnapshot, CredentialState } from '../credential.ts';
import type { ChangeMark } from './change-mark.ts';
import type { Seen } from './store.ts';

export type { ChangeMark };

/**
 * Tells waiters that a credential changed (Postgres LISTEN/NOTIFY). A notification names the state
 * its statement committed. One that names the state the waiter saw (its own, notified late) is no
 * news. Any other ends the wait: if it carries a state with a newer version than the waiter saw
 * (so committed after the waiter's read), the caller decides from that state; otherwise the
 * caller reads the row, since the notification may be stale, which costs one more read and wait,
 * never a wrong answer. Waiters keep polling, so a lost notification costs latency, never
 * correctness.
 */
export interface ChangeNotifications {
  /** Gets ready to notify (connects); called once the schema is known to be in place. */
  start(): void;
  watch(id: string): ChangeWatch;
  /** Where the notifications stand now, if listening: taken before a read (see `heardSince`). */
  mark(): ChangeMark | undefined;
  /**
   * The states notified for `id` since `mark` (undefined entries: unknown states), if every
   * change committed since then has been heard; undefined when that cannot be vouched for (the
   * listener reconnected, or the notifications since then are no longer all kept).
   */
  heardSince(id: string, mark: ChangeMark): (HeardState | undefined)[] | undefined;
  /** Stops listening; called by `Store.close()` before the connections are closed. */
  close(): Promise<void>;
}

/** The state a notification named: what the statement that sent it committed. */
export interface HeardState {
  version: number;
  /** Null: the statement left the credential without a lease. */
  leaseId: string | null;
  /**
   * The whole state the statement committed, when it bumped the version and the notification
   * carried it (see `NOTIFY_STATE_MIGRATION`), with that statement's database clock as `now`.
   */
  state?: CredentialSnapshot<CredentialState>;
  /** Where the listener stood once it had heard this: changes committed later are heard after. */
  at: ChangeMark;
}

export interface ChangeWatch {
  /**
   * Settles once a change committed from now on will be notified, or once it is known that it
   * will not be (the listener is down): then the waiter only polls. Never rejects.
   */
  readonly ready: Promise<void>;
  /**
   * The next notification, in the order they were committed (ones that came since the last call
   * first). Resolves with the state it named, or with undefined when that is unknown: after `ms`
   * without one, when the listener reconnected (changes may have gone unnotified meanwhile) or
   * stopped, for a deleted credential, and for a bare-id payload (a database not yet migrated to
   * `0004_notify_payload`). Undefined means: read the row to know.
   */
  next(ms: number): Promise<HeardState | undefined>;
  stop(): void;
}

/** What `waitForChange` needs of a store. */
export interface ChangeSources {
  /** Push notifications, if the database has them. */
  changes: ChangeNotifications | undefined;
  /** How often to look when no notification arrives. */
  pollIntervalMs: number;
  /** Times the timeout and the polls. */
  clock: Clock;
  /** One look at the row: whether its version or lease holder differs from `seen` (or it is gone). */
  changed(id: string, seen: Seen): Promise<boolean>;
}

/**
 * `Store.waitForChange`: resolves when the credential differs from `seen` or after `timeoutMs`;
 * with the state a notification carried when it is newer than `seen`, else with undefined (read).
 */
export async function waitForChange(
  sources: ChangeSources,
  id: string,
  seen: Seen,
  timeoutMs: number,
): Promise<CredentialSnapshot<CredentialState> | undefined> {
  const { changes, pollIntervalMs, clock } = sources;
  const now = () => clock.monotonic();
  const deadline = now() + timeoutMs;
  const watch = changes?.watch(id);
  try {
    // The change may have landed between the caller's read and the watch, and then no
    // notification will come: look once more, as soon as later changes will be notified.
    // Unless the listener heard everything since the caller's read began (`seen` carries the
    // mark taken before that read): then what it heard meanwhile tells, the newest last.
    if (watch) {
      const heard = seen.readMark && changes!.heardSince(id, seen.readMark);
      if (heard === undefined) {
        await settleWithin(watch.ready, deadline - now());
        if (await sources.changed(id, seen)) return undefined;
      } else if (heard.some((h) => namesAnother(h, seen))) {
        return newerState(seen, heard.at(-1));
      }
    }
    for (;;) {
      const left = deadline - now();
      if (left <= 0) return undefined;
      // Jitter keeps pollers in several processes from reading in lockstep.
      const pollAt = now() + Math.min(left, pollIntervalMs * (0.5 + Math.random()));
      if (watch) {
        // A notification that names another state than `seen` is the change: the caller
        // reads the row next anyway, so no read here. One that names `seen` itself (the
        // caller's own state, notified late) is no news: keep waiting, until the next poll.
        for (;;) {
          const heard = await watch.next(pollAt - now());
          if (!heard) break;
          if (namesAnother(heard, seen)) return newerState(seen, heard);
        }
      } else {
        await clock.sleep(pollAt - now());
      }
      if (await sources.changed(id, seen)) return undefined;
    }
  } finally {
    watch?.stop();
  }
}

/**
 * The state a notification carried, if its version is newer than `seen`'s: then it was
 * committed after the caller's read, and the caller may decide from it as from a read, marked
 * with where the listener stood once it had heard it (a read mark, as `getCredential` gives). An
 * older or equal version may come from a notification of a change the read already saw, or one
 * before it: the caller reads.
 */
function newerState(
  seen: Seen,
  heard: HeardState | undefined,
): CredentialSnapshot<CredentialState> | undefined {
  if (!heard?.state || heard.version <= seen.version) return undefined;
  // A copy: the state is shared by every waiter the notification woke.
  return { now: heard.state.now, record: { ...heard.state.record, readMark: heard.at } };
}

/** Whether a notification is news to a waiter that saw `seen` (unknown states always are). */
function namesAnother(heard: HeardState | undefined, seen: Seen): boolean {
  return heard?.version !== seen.version || heard.leaseId !== seen.leaseId;
}

/** Waits for `promise` to settle, at most `ms`, leaving no timer behind. */
function settleWithin(promise: Promise<unknown>, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, Math.max(0, ms));
    const done = () => {
      clearTimeout(timer);
      resolve();
    };
    promise.then(done, done);
  });
}

import pg from 'pg';
import type { CredentialSnapshot, CredentialState, CredentialStatus } from '../../credential.ts';
import type {
  ChangeMark,
  ChangeNotifications,
  ChangeWatch,
  HeardState,
} from '../change-notifications.ts';
import { CREDENTIAL_STATUSES } from '../schema.ts';
import { sessionAccepted, type TargetSession } from './host-selection.ts';

const MIN_RETRY_MS = 100;
const MAX_RETRY_MS = 5_000;
const END_TIMEOUT_MS = 1_000;
/** Notifications a watch keeps for a waiter busy elsewhere; beyond, it only says "look". */
const MAX_PENDING = 16;
/** Notifications kept for `heardSince`, newest last; a mark older than these says "unknown". */
const MAX_RECENT = 256;

/**
 * One LISTEN connection per store, shared by all its waiters through an in-process map keyed by
 * credential id (the payload up to its first space). Started by `migrate()` or the first waiter;
 * if it drops, it reconnects with backoff while anyone waits. Notifications are hints (see
 * `ChangeNotifications`): waiters keep polling, so while this is down they only see changes
 * later.
 */
export class ChangeListener implements ChangeNotifications {
  /** One per host of the store's host list; a failed attempt moves on to the next. */
  readonly #configs: readonly pg.ClientConfig[];
  readonly #target: TargetSession;
  #host = 0;
  readonly #channel: string;
  readonly #watches = new Map<string, Set<Watch>>();
  #client: pg.Client | undefined;
  #listening = false;
  /** Settles when the current connection attempt has succeeded or failed. */
  #attempt: Promise<void> | undefined;
  #retryTimer: NodeJS.Timeout | undefined;
  #failures = 0;
  #closed = false;
  /** Notifications heard so far, and the last `MAX_RECENT` of them. */
  #heard = 0;
  #recent: { seq: number; id: string; heard: HeardState | undefined }[] = [];
  /** Counts LISTEN sessions: a mark from an earlier one vouches for nothing. */
  #session = 0;

  constructor(configs: readonly pg.ClientConfig[], target: TargetSession, channel: string) {
    this.#configs = configs;
    this.#target = target;
    this.#channel = channel;
  }

  /** Connects ahead of the first waiter, so that no caller waits for a new connection. */
  start(): void {
    if (!this.#closed && !this.#client && !this.#retryTimer) this.#connect();
  }

  watch(id: string): ChangeWatch {
    const watch = new Watch(() => this.#unwatch(id, watch));
    if (this.#closed) return watch;
    let set = this.#watches.get(id);
    if (!set) this.#watches.set(id, (set = new Set()));
    set.add(watch);
    if (!this.#client && !this.#retryTimer) this.#connect();
    // While reconnecting after a failure, waiters do not wait for it: they poll meanwhile.
    watch.ready = this.#listening || !this.#client ? Promise.resolve() : this.#attempt!;
    return watch;
  }

  mark(): ChangeMark | undefined {
    return this.#listening ? { session: this.#session, heard: this.#heard } : undefined;
  }

  heardSince(id: string, mark: ChangeMark): (HeardState | undefined)[] | undefined {
    // Listening without a break since the mark, and every notification since then still kept.
    if (!this.#listening || mark.session !== this.#session) return undefined;
    const oldest = this.#recent[0]?.seq ?? this.#heard + 1;
    if (oldest > mark.heard + 1) return undefined;
    return this.#recent.filter((n) => n.seq > mark.heard && n.id === id).map((n) => n.heard);
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    const client = this.#client;
    this.#drop();
    this.#wakeAll();
    if (client) await endWithin(client, END_TIMEOUT_MS);
  }

  #connect(): void {
    const host = this.#host;
    const client = new pg.Client(this.#configs[host]);
    this.#client = client;
    this.#listening = false;
    client.on('notification', (message) => {
      if (message.channel !== this.#channel || message.payload === undefined) return;
      const { id, heard: named } = parsePayload(message.payload);
      const seq = ++this.#heard;
      const heard = named && { ...named, at: { session: this.#session, heard: seq } };
      this.#recent.push({ seq, id, heard });
      if (this.#recent.length > MAX_RECENT) this.#recent.shift();
      for (const watch of this.#watches.get(id) ?? []) watch.wake(heard);
    });
    // A dropped connection ('error', then 'end') is expected: the server restarts, an admin
    // terminates the backend. Without a listener the 'error' event would crash the process.
    client.on('error', () => this.#lost(client));
    client.on('end', () => this.#lost(client));
    this.#attempt = (async () => {
      try {
        await client.connect();
        // LISTEN works on a standby's session only to fail later: ask as the pool does.
        if (!(await sessionAccepted(client, this.#target))) throw new Error('wrong server role');
        await client.query(`listen ${this.#channel}`);
      } catch {
        this.#host = (host + 1) % this.#configs.length;
        this.#lost(client);
        return;
      }
      if (this.#client !== client) return;
      this.#listening = true;
      this.#session += 1;
      // Changes made while no connection listened were not notified: everyone looks again.
      if (this.#failures > 0) this.#wakeAll();
      this.#failures = 0;
    })();
  }

  #lost(client: pg.Client): void {
    if (this.#client !== client) return;
    this.#drop();
    void endWithin(client, END_TIMEOUT_MS);
    if (this.#closed) return;
    this.#failures++;
    const backoff = Math.min(MAX_RETRY_MS, MIN_RETRY_MS * 2 ** (this.#failures - 1));
    this.#retryTimer = setTimeout(
      () => {
        this.#retryTimer = undefined;
        // Nobody waiting: stay down until the next waiter comes.
        if (!this.#closed && this.#watches.size > 0) this.#connect();
      },
      backoff * (0.5 + Math.random()),
    );
    this.#retryTimer.unref();
  }

  #drop(): void {
    this.#client = undefined;
    this.#listening = false;
  }

  /** Something may have changed unnotified: every waiter reads. */
  #wakeAll(): void {
    for (const set of this.#watches.values()) for (const watch of set) watch.wake(undefined);
  }

  #unwatch(id: string, watch: Watch): void {
    const set = this.#watches.get(id);
    set?.delete(watch);
    if (set?.size === 0) this.#watches.delete(id);
  }
}

/**
 * The credential id a payload is about, and the state it names: `<id> <version> <lease id>` (see
 * `NOTIFY_PAYLOAD_MIGRATION`; an empty lease id for none), then the committed state as JSON after
 * a version change (`NOTIFY_STATE_MIGRATION`). A bare id (a delete, or a database not yet migrated
 * to `0004_notify_payload`) or anything else names no state: the waiter reads. A state that does
 * not read as one is left out (any role that can connect may notify): the waiter reads.
 */
export function parsePayload(payload: string): {
  id: string;
  heard: Omit<HeardState, 'at'> | undefined;
} {
  const space = payload.indexOf(' ');
  if (space < 0) return { id: payload, heard: undefined };
  const id = payload.slice(0, space);
  const named = /^(\d{1,15}) (\S*)(?: (\{.*\}))?$/s.exec(payload.slice(space + 1));
  if (!named) return { id, heard: undefined };
  const version = Number(named[1]);
  const leaseId = named[2] === '' ? null : named[2]!;
  const state = named[3] === undefined ? undefined : parseState(id, version, leaseId, named[3]);
  return { id, heard: state ? { version, leaseId, state } : { version, leaseId } };
}

/** The state `NOTIFY_STATE_MIGRATION`'s trigger writes, checked field by field. */
function parseState(
  id: string,
  version: number,
  leaseId: string | null,
  json: string,
): CredentialSnapshot<CredentialState> | undefined {
  let s: Record<string, unknown>;
  try {
    s = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  const text = (v: unknown): v is string => typeof v === 'string';
  const time = (v: unknown): v is number => Number.isSafeInteger(v);
  const orNull =
    <T>(is: (v: unknown) => v is T) =>
    (v: unknown): v is T | null =>
      v === null || is(v);
  if (!(
    time(s.now) &&
    text(s.provider) &&
    text(s.status) &&
    (CREDENTIAL_STATUSES as readonly string[]).includes(s.status) &&
    orNull(text)(s.status_reason) &&
    text(s.access_token) &&
    time(s.access_expires_at) &&
    text(s.token_type) &&
    orNull(text)(s.scope) &&
    orNull(time)(s.lease_until) &&
    orNull(time)(s.next_attempt_at) &&
    orNull(text)(s.last_error) &&
    // Absent before migration 0010_notify_commit_trace.
    orNull(text)(s.commit_trace ?? null)
  )) {
    return undefined;
  }
  return {
    now: s.now,
    record: {
      id,
      version,
      leaseId,
      provider: s.provider,
      status: s.status as CredentialStatus,
      statusReason: s.status_reason,
      accessToken: s.access_token,
      accessExpiresAt: s.access_expires_at,
      tokenType: s.token_type,
      scope: s.scope,
      leaseUntil: s.lease_until,
      nextAttemptAt: s.next_attempt_at,
      lastError: s.last_error,
      commitTrace: (s.commit_trace as string | null | undefined) ?? null,
    },
  };
}

/**
 * One waiter's view: the notifications for its credential, in order, so that none that comes
 * between two waits is lost and one naming the waiter's own state cannot hide a later change.
 */
class Watch implements ChangeWatch {
  ready: Promise<void> = Promise.resolve();
  /** Heard while nobody waited in `next`, oldest first; undefined: look at the row. */
  #pending: (HeardState | undefined)[] = [];
  #resolve: ((heard: HeardState | undefined) => void) | undefined;
  readonly #stop: () => void;

  constructor(stop: () => void) {
    this.#stop = stop;
  }

  wake(heard: HeardState | undefined): void {
    if (this.#resolve) return this.#resolve(heard);
    const last = this.#pending.length - 1;
    // One read after an unknown wake covers everything before it: never two in a row.
    if (heard === undefined && last >= 0 && this.#pending[last] === undefined) return;
    // A waiter that fell far behind reads the row instead of going through each notification.
    if (last + 1 >= MAX_PENDING) this.#pending = [undefined];
    else this.#pending.push(heard);
  }

  next(ms: number): Promise<HeardState | undefined> {
    if (this.#pending.length > 0) return Promise.resolve(this.#pending.shift());
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.#resolve?.(undefined), Math.max(0, ms));
      this.#resolve = (heard) => {
        clearTimeout(timer);
        this.#resolve = undefined;
        resolve(heard);
      };
    });
  }

  stop(): void {
    this.#resolve?.(undefined);
    this.#stop();
  }
}

/** Ends a client, giving up after `ms` (a dead server may never answer the goodbye). */
async function endWithin(client: pg.Client, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    client.end().catch(() => undefined),
    new Promise<void>((resolve) => (timer = setTimeout(resolve, ms))),
  ]);
  clearTimeout(timer);
}

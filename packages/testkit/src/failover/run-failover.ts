import { setTimeout as sleep } from 'node:timers/promises';
import {
  KeyRing,
  NeedsReauthError,
  RefreshUnavailableError,
  type AccessToken,
  type ProtocolStep,
} from '@tokenwarden/core';
import pg from 'pg';
import { openBroker, providerConfigFor, type OpenedBroker } from '../fixture/broker-fixture.ts';
import { startReplicatedPostgres } from '../postgres/replication.ts';
import { TestProvider } from '../provider/provider.ts';

export interface FailoverOptions {
  /** Synchronous streaming replication (the standby confirms every commit) or asynchronous. */
  synchronous: boolean;
  /** Expired credentials refreshed in the storm; each one's rotation is in flight at the kill. */
  credentials: number;
  /** Concurrent callers per credential, spread over two brokers (two machines). */
  callersPerCredential: number;
  /** Provider latency: the time the leaders' requests are out while the storm waits. */
  latencyMs: number;
}

export interface FailoverReport {
  credentials: number;
  callers: number;
  /** Refresh tokens the provider rotated in the storm, before the primary died. */
  rotations: number;
  /** Leaders that had the provider's answer and whose commit had not landed when the primary died. */
  commitsInFlight: number;
  /** Callers whose token, at the end, is accepted by the provider's resource endpoint. */
  callersWithWorkingToken: number;
  /** What the callers that got no token heard instead, one line each. */
  callerErrors: string[];
  /**
   * Credentials whose rotated refresh token the new primary does not hold: refreshing them after
   * the failover is refused (the old token was spent; reuse detection revokes its family).
   */
  lostRefreshTokens: number;
  /** Spent refresh tokens presented to the provider, over the whole run. */
  reuseViolations: number;
  /** Credentials by status on the new primary, at the end. */
  statuses: Record<string, number>;
}

/** A caller that hears `refresh_unavailable` (the store is failing over) asks again, this often. */
const CALLER_RETRIES = 150;
const CALLER_RETRY_MS = 200;

/**
 * A primary and a streaming standby (sync or async), two brokers on the host list of both, and a
 * refresh storm over expired credentials at a provider that rotates refresh tokens and detects
 * reuse without a grace window (the strictest kind). Once the provider has every leader's
 * request, replication is held (the standby stops receiving); once it has answered them all,
 * the primary's machine dies (SIGKILL) and the standby is promoted. Counts, not times, say what
 * survived: every caller should end with a working token and, with synchronous replication, no
 * rotated refresh token is lost. Used by the suite and by `bench/failover.ts`.
 */
export async function runFailover(options: FailoverOptions): Promise<FailoverReport> {
  const pair = await startReplicatedPostgres({ synchronous: options.synchronous });
  const provider = await TestProvider.start({
    latencyMs: options.latencyMs,
    rotation: true,
    reuseDetection: true,
    reuseGraceMs: 0,
  });
  const brokers: OpenedBroker[] = [];
  try {
    const fixture = {
      dbPath: '',
      databaseUrl: `${pair.url}?target_session_attrs=read-write`,
      // Room for every leader's commit to be in flight at once, and for the waiters' reads.
      poolMax: options.credentials + 4,
      keys: KeyRing.generate('failover').serialize(),
      provider: providerConfigFor(provider),
      // Long enough for the failover: a leader keeps retrying its commit within its lease.
      leaseMs: 15_000,
      maxWaitMs: 30_000,
      backoff: { baseMs: 50, maxMs: 500 },
    };
    // Leaders that have the provider's answer, and those whose commit has landed.
    let answered = 0;
    let committed = 0;
    const onStep = (step: ProtocolStep) => {
      if (step === 'response_received') answered++;
      if (step === 'committed') committed++;
    };
    brokers.push(await openBroker(fixture, { onStep }), await openBroker(fixture, { onStep }));
    const ids = await importExpired(brokers[0]!, provider, options.credentials);
    await untilStandbyHas(pair.standby.url, ids.length);

    const callers = ids.flatMap((id) =>
      Array.from({ length: options.callersPerCredential }, (_, i) =>
        obtainRetrying(brokers[i % 2]!, id),
      ),
    );
    await until(() => provider.stats().tokenRequests >= ids.length);
    await pair.holdReplication();
    await until(() => provider.stats().redemptions >= ids.length);
    const rotations = provider.stats().redemptions;
    let commitsInFlight = 0;
    if (options.synchronous) {
      // Every leader has its answer and is committing: a commit waits on the primary for the
      // standby that will never answer, and the others of its process queue behind it (one
      // grouped statement at a time). Should some never get there, the kill comes anyway.
      await until(
        async () => answered >= ids.length && (await pair.commitsWaitingForStandby()) > 0,
        10_000,
      ).catch(() => undefined);
      commitsInFlight = answered - committed;
    } else {
      // Committed on the primary alone; the callers have their tokens.
      await Promise.all(callers);
    }
    await pair.failover();
    const outcomes = await Promise.all(callers);

    const tokens = outcomes.filter((o): o is AccessToken => typeof o !== 'string');
    const working = await Promise.all(tokens.map((t) => accepted(provider, t.accessToken)));
    let lost = 0;
    for (const id of ids) if (!(await refreshesAgain(brokers[0]!, id))) lost++;
    return {
      credentials: ids.length,
      callers: callers.length,
      rotations,
      commitsInFlight,
      callersWithWorkingToken: working.filter(Boolean).length,
      callerErrors: outcomes.filter((o): o is string => typeof o === 'string'),
      lostRefreshTokens: lost,
      reuseViolations: provider.stats().reuseViolations,
      statuses: await statuses(pair.standby.url),
    };
  } finally {
    // Servers first: a broker's close waits for its queries, which a held standby never ends.
    await pair.close();
    for (const broker of brokers) await broker.close();
    await provider.close();
  }
}

async function importExpired(
  { broker }: OpenedBroker,
  provider: TestProvider,
  count: number,
): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const grant = provider.issueGrant({ subject: `user-${i}` });
    const { id } = await broker.importCredential({
      provider: 'test',
      owner: `user-${i}`,
      accessToken: grant.access_token,
      refreshToken: grant.refresh_token,
      expiresIn: 0,
    });
    ids.push(id);
  }
  return ids;
}

/** A token, or what the caller heard; `refresh_unavailable` (the store failing over) is retried. */
async function obtainRetrying(opened: OpenedBroker, id: string): Promise<AccessToken | string> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await opened.broker.getAccessToken(id);
    } catch (error) {
      if (!(error instanceof RefreshUnavailableError) || attempt === CALLER_RETRIES) {
        return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      }
      await sleep(CALLER_RETRY_MS);
    }
  }
}

/** Whether the stored refresh token still works: the access token reported rejected, refreshed. */
async function refreshesAgain(opened: OpenedBroker, id: string): Promise<boolean> {
  const current = await obtainRetrying(opened, id);
  if (typeof current === 'string') return false;
  try {
    await opened.broker.reportRejected(id, current.version);
    return true;
  } catch (error) {
    if (error instanceof NeedsReauthError) return false;
    throw error;
  }
}

async function accepted(provider: TestProvider, accessToken: string): Promise<boolean> {
  const response = await fetch(`${provider.url}/resource`, {
    headers: { authorization: `Bearer ${accessToken}` },
  });
  await response.body?.cancel();
  return response.status === 200;
}

async function untilStandbyHas(standbyUrl: string, credentials: number): Promise<void> {
  // Asynchronous: the standby may not have replayed even the migrations yet.
  await until(
    async () =>
      (await statuses(standbyUrl).catch(() => ({}) as Record<string, number>)).active ===
      credentials,
  );
}

async function statuses(url: string): Promise<Record<string, number>> {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => {});
  await client.connect();
  try {
    const { rows } = await client.query<{ status: string; count: number }>(
      'select status, count(*)::int as count from credentials group by status',
    );
    return Object.fromEntries(rows.map((r) => [r.status, r.count]));
  } finally {
    await client.end();
  }
}

async function until(check: () => boolean | Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; !(await check());) {
    if (Date.now() > deadline) throw new Error('failover scenario: timed out waiting');
    await sleep(20);
  }
}

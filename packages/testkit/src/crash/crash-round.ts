// One round of crash torture: a child process takes the lease of an expired credential and is
// SIGKILLed at one of the design brief's crash points; then the next caller (in this process)
// asks for the token, and a later one asks again. The round reports what happened instead of
// asserting it, so that the crash-point tests and `bench/crash` judge the same observation.
import { once } from 'node:events';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import {
  NeedsReauthError,
  type CredentialBroker,
  type ProtocolStep,
  type ProviderConfig,
} from '@tokenwarden/core';
import { fixtureEnv, type BrokerFixture } from '../fixture/broker-fixture.ts';
import { spawnTs } from '../harness/spawn.ts';
import type { TestProvider } from '../provider/provider.ts';
import type { TestProviderOptions } from '../provider/types.ts';

/** The seam's steps, plus "while waiting for the provider": killed once the provider has the request. */
export type CrashPoint = ProtocolStep | 'waiting_for_provider';

export const CRASH_POINTS: readonly CrashPoint[] = [
  'lease_acquired',
  'intent_recorded',
  'waiting_for_provider',
  'response_received',
  'committed',
];

/** After the intent and before the commit: the refresh token may have been spent. */
export const IN_DOUBT_POINTS: readonly CrashPoint[] = [
  'intent_recorded',
  'waiting_for_provider',
  'response_received',
];

/** How the test provider behaves, and what the broker is told about it (the same thing). */
export interface CrashProfile {
  provider: TestProviderOptions;
  config: Partial<ProviderConfig>;
}

const noGrace = { rotation: true, reuseDetection: true, reuseGraceMs: 0 };
const noGraceConfig = { rotatesRefreshTokens: true, reuseDetection: true, reuseGraceSeconds: 0 };

export const CRASH_PROFILES = {
  'rotation, reuse detection, no grace (Auth0, Okta past its grace)': {
    provider: noGrace,
    config: noGraceConfig,
  },
  'rotation with a grace window (Xero, Atlassian)': {
    provider: { rotation: true, reuseDetection: true, reuseGraceMs: 60_000 },
    config: { rotatesRefreshTokens: true, reuseDetection: true, reuseGraceSeconds: 60 },
  },
  'no rotation (Google)': {
    provider: { rotation: false },
    config: { rotatesRefreshTokens: false, reuseDetection: true, reuseGraceSeconds: 0 },
  },
  'reuse revokes every grant of the user (Salesforce)': {
    provider: noGrace,
    config: { ...noGraceConfig, reuseRevokesAllGrants: true },
  },
} satisfies Record<string, CrashProfile>;

export type CrashProfileName = keyof typeof CRASH_PROFILES;

/** A test provider, a broker fixture pointing at it, and a broker in this process. */
export interface CrashLane {
  provider: TestProvider;
  fixture: BrokerFixture;
  broker: CredentialBroker;
  /** The crashing child's script; default `CRASH_WORKER`. */
  workerScript?: string;
}

export interface CrashObservation {
  point: CrashPoint;
  /** How the child ended: 'SIGKILL' unless the seam never reached the point. */
  signal: string | null;
  /** Redemptions the provider made for the child before the next caller asked: 0 or 1. */
  redeemedBeforeNext: number;
  /**
   * Token requests the child sent before it died: 1 at most, unless its first answer outlived
   * its deadline on a loaded machine and it sent again (a late answer, like `nextRedemptions`).
   */
  leaderRequests: number;
  /** What the next caller got: a token the provider accepts, `refresh_in_doubt`, or another error code. */
  outcome: 'token' | 'refresh_in_doubt' | string;
  version?: number;
  /**
   * Redemptions the provider made for the next caller. More than the one its token came from
   * means an answer the broker did not take: a request that outlived its deadline on a loaded
   * machine, redeemed by the provider after the broker gave up on it.
   */
  nextRedemptions: number;
  /** Token requests sent for the next caller and for the one after it. */
  nextRequests: number;
  laterRequests: number;
  /** What the later caller got, in the same terms as `outcome`. */
  laterOutcome: string;
  reuseViolations: number;
  revokedFamilies: number;
  /** From the kill to the next caller holding a valid token (undefined without one). */
  recoveryMs?: number;
  status: string;
}

/** The child that crashes: this package's crash-worker, as source or built like this module. */
export const CRASH_WORKER = join(
  import.meta.dirname,
  `crash-worker${import.meta.filename.endsWith('.ts') ? '.ts' : '.js'}`,
);
/** Provider latency for the "waiting for the provider" point: the child is killed meanwhile. */
export const WAITING_LATENCY_MS = 400;
/** Time for the provider to finish a redemption whose requester was killed while it waited. */
const SETTLE_MS = 500;

let rounds = 0;

/**
 * Imports an expired grant, kills a leader at `point`, then asks twice. The provider must answer
 * in well under `SETTLE_MS` for the "waiting for the provider" point to find the token redeemed.
 * With `loseNextAnswer`, the next caller's first send gets an unreadable 2xx that redeemed
 * nothing (a lost answer that teaches nothing): its leader must send again, paced, and let that
 * answer decide.
 */
export async function crashRound(
  lane: CrashLane,
  point: CrashPoint,
  { loseNextAnswer = false }: { loseNextAnswer?: boolean } = {},
): Promise<CrashObservation> {
  const { provider, fixture, broker } = lane;
  const grant = provider.issueGrant();
  const { id } = await broker.importCredential({
    provider: fixture.provider.name,
    owner: `crash-${process.pid}-${++rounds}`,
    accessToken: grant.access_token,
    refreshToken: grant.refresh_token,
    expiresIn: 0,
  });
  const start = provider.stats();
  const { signal, killedAt } = await crashLeader(lane, id, point);

  const beforeNext = provider.stats();
  if (loseNextAnswer) provider.injectFailures({ kind: 'malformed_json', times: 1 });
  const next = await broker.getAccessToken(id).catch((error: unknown) => error);
  provider.clearFailures();
  const recoveredAt = performance.now();
  const afterNext = provider.stats();
  const later = await broker.getAccessToken(id).catch((error: unknown) => error);
  const end = provider.stats();

  const outcome = describe(next, provider);
  return {
    point,
    signal,
    redeemedBeforeNext: beforeNext.redemptions - start.redemptions,
    leaderRequests: beforeNext.tokenRequests - start.tokenRequests,
    outcome,
    version: outcome === 'token' ? (next as { version: number }).version : undefined,
    nextRedemptions: afterNext.redemptions - beforeNext.redemptions,
    nextRequests: afterNext.tokenRequests - beforeNext.tokenRequests,
    laterRequests: end.tokenRequests - afterNext.tokenRequests,
    laterOutcome: describe(later, provider),
    reuseViolations: end.reuseViolations - start.reuseViolations,
    revokedFamilies: end.revokedFamilies - start.revokedFamilies,
    recoveryMs: outcome === 'token' ? recoveredAt - killedAt : undefined,
    status: (await broker.getConnection(id)).status,
  };
}

/**
 * Starts a child that asks for connection `id`'s token and is SIGKILLed at `point`; resolves once
 * it is dead and, at "waiting for the provider", the provider has finished what it was sent.
 */
export async function crashLeader(
  lane: Pick<CrashLane, 'provider' | 'fixture' | 'workerScript'>,
  id: string,
  point: CrashPoint,
): Promise<{ signal: string | null; killedAt: number }> {
  const requests = lane.provider.stats().tokenRequests;
  const child = spawnTs(lane.workerScript ?? CRASH_WORKER, [id], {
    ...fixtureEnv(lane.fixture),
    ...(point === 'waiting_for_provider' ? {} : { TW_CRASH_AT: point }),
  });
  child.stdin?.end();
  child.stdout?.resume();
  child.stderr?.resume();
  const exited = once(child, 'exit') as Promise<[number | null, string | null]>;
  if (point === 'waiting_for_provider') {
    const alive = () => child.exitCode === null && child.signalCode === null;
    while (alive() && lane.provider.stats().tokenRequests === requests) await sleep(5);
    child.kill('SIGKILL');
  }
  const [, signal] = await exited;
  const killedAt = performance.now();
  if (point === 'waiting_for_provider') await sleep(SETTLE_MS);
  return { signal, killedAt };
}

function describe(result: unknown, provider: TestProvider): string {
  if (result instanceof NeedsReauthError) {
    return result.reason === 'refresh_in_doubt'
      ? 'refresh_in_doubt'
      : `needs_reauth/${result.reason}`;
  }
  if (result instanceof Error) return (result as { code?: string }).code ?? result.name;
  const token = result as { accessToken: string };
  return provider.isAccessTokenValid(token.accessToken) ? 'token' : 'invalid_token';
}

/**
 * Whether the provider's own rules made losing this credential unavoidable: it rotates, punishes
 * reuse without a grace window, and had redeemed a request whose answer the broker never took
 * (the crashed leader's, or one that outlived its deadline) — or its punishment reaches beyond
 * the family, so no unsafe replay is ever sent.
 */
export function lossIsExpected(config: ProviderConfig, observation: CrashObservation): boolean {
  if (observation.outcome !== 'refresh_in_doubt') return false;
  const redeemed = observation.redeemedBeforeNext + observation.nextRedemptions > 0;
  if (config.reuseRevokesAllGrants) return redeemed || IN_DOUBT_POINTS.includes(observation.point);
  const punishes = config.rotatesRefreshTokens !== false && config.reuseDetection !== false;
  return punishes && !config.reuseGraceSeconds && redeemed;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

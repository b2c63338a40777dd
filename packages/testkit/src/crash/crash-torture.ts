// Crash torture: many crash rounds per crash point and provider profile, each cell on lanes of
// its own (a test provider, a database and a broker each) so that lanes run side by side without
// reading each other's provider counters. `bench/crash` prints the summaries; a test runs a round
// or two per cell so that the bench cannot rot.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KeyRing } from '@tokenwarden/core';
import { openBroker, providerConfigFor, type OpenedBroker } from '../fixture/broker-fixture.ts';
import { TestProvider } from '../provider/provider.ts';
import { quantile } from '../storm/run-storm.ts';
import {
  crashRound,
  lossIsExpected,
  type CrashLane,
  type CrashObservation,
  type CrashPoint,
  type CrashProfile,
  type CrashProfileName,
  WAITING_LATENCY_MS,
} from './crash-round.ts';

/** The three provider profiles, by the short name the bench prints. */
export const TORTURE_PROFILES: Record<string, CrashProfileName> = {
  'no grace': 'rotation, reuse detection, no grace (Auth0, Okta past its grace)',
  'grace 60 s': 'rotation with a grace window (Xero, Atlassian)',
  'no rotation': 'no rotation (Google)',
};

/** The lease the crashed leader holds: the next caller's wait is mostly its remainder. */
export const CRASH_LEASE_MS = 1_500;

export interface CrashCellSummary {
  rounds: number;
  /** The next caller got a token the provider accepts. */
  recovered: number;
  /** `refresh_in_doubt` where the provider's rules left no choice (see `lossIsExpected`). */
  expectedLoss: number;
  /**
   * Of the rounds (recovered or not), those where an answer the provider sent was not taken in
   * time, by the crashed leader (it sent again) or by the next caller.
   */
  timedOut: number;
  /** Any other end without a token: must be 0. */
  lost: number;
  /** Reuse violations beyond the one refused replay of an expected loss: must be 0. */
  reuseViolations: number;
  /**
   * Rounds where the next caller sent more than its request and one replay (and one more for each
   * answer it no longer waited for), or the later caller anything after a final answer: must be 0.
   */
  loops: number;
  /** What the lost rounds' next callers got, by kind. */
  failures: Record<string, number>;
  /** Kill → the next caller's valid token, ms, over the recovered rounds. */
  recoveryMs: { p50: number; p99: number; max: number } | undefined;
}

export function summarizeCrashRounds(
  lane: Pick<CrashLane, 'fixture'>,
  observations: readonly CrashObservation[],
): CrashCellSummary {
  const summary: CrashCellSummary = {
    rounds: observations.length,
    recovered: 0,
    expectedLoss: 0,
    timedOut: 0,
    lost: 0,
    reuseViolations: 0,
    loops: 0,
    failures: {},
    recoveryMs: undefined,
  };
  const recoveries: number[] = [];
  for (const o of observations) {
    const expectedLoss = lossIsExpected(lane.fixture.provider, o);
    if (o.outcome === 'token') {
      summary.recovered++;
      recoveries.push(o.recoveryMs!);
    } else if (expectedLoss) {
      summary.expectedLoss++;
    } else {
      summary.lost++;
      summary.failures[o.outcome] = (summary.failures[o.outcome] ?? 0) + 1;
    }
    // The one replay of an expected loss is refused as reuse: the family it revokes holds nothing live.
    summary.reuseViolations += o.reuseViolations - (expectedLoss && o.reuseViolations > 0 ? 1 : 0);
    // Answers the provider sent that the broker no longer waited for: each justifies a send more.
    const lateAnswers = Math.max(0, o.nextRedemptions - (o.outcome === 'token' ? 1 : 0));
    if (lateAnswers > 0 || o.leaderRequests > 1) summary.timedOut++;
    if (o.nextRequests > 2 + lateAnswers || o.laterRequests > 0 || o.laterOutcome !== o.outcome)
      summary.loops++;
  }
  if (recoveries.length > 0) {
    summary.recoveryMs = {
      p50: quantile(recoveries, 0.5),
      p99: quantile(recoveries, 0.99),
      max: Math.max(...recoveries),
    };
  }
  return summary;
}

export interface CrashLaneOptions {
  profile: CrashProfile;
  /** A Postgres database for this lane; without it, a SQLite file in a fresh directory. */
  databaseUrl?: string;
  workerScript?: string;
}

export interface OpenedCrashLane extends CrashLane {
  close(): Promise<void>;
}

/** A lane of its own: a test provider with the profile's rules, its database, a broker. */
export async function openCrashLane(options: CrashLaneOptions): Promise<OpenedCrashLane> {
  const dir = mkdtempSync(join(tmpdir(), 'tw-crash-'));
  const provider = await TestProvider.start(options.profile.provider);
  let opened: OpenedBroker | undefined;
  try {
    const fixture = {
      dbPath: join(dir, 'tokenwarden.sqlite'),
      databaseUrl: options.databaseUrl,
      keys: KeyRing.generate('k1').serialize(),
      provider: { ...providerConfigFor(provider), ...options.profile.config },
      leaseMs: CRASH_LEASE_MS,
      maxWaitMs: 10_000,
      backoff: { baseMs: 20, maxMs: 200 },
    };
    opened = await openBroker(fixture);
    const { broker, close } = opened;
    return {
      provider,
      fixture,
      broker,
      workerScript: options.workerScript,
      async close() {
        await close();
        await provider.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await opened?.close();
    await provider.close();
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}

/** `rounds` crash rounds at `point`, spread over the lanes, each lane's rounds one after another. */
export async function runCrashCell(
  lanes: readonly CrashLane[],
  point: CrashPoint,
  rounds: number,
): Promise<CrashObservation[]> {
  const observations: CrashObservation[] = [];
  let next = 0;
  await Promise.all(
    lanes.map(async (lane) => {
      lane.provider.configure({
        latencyMs: point === 'waiting_for_provider' ? WAITING_LATENCY_MS : 0,
      });
      while (next < rounds) {
        next++;
        observations.push(await crashRound(lane, point));
      }
    }),
  );
  return observations;
}

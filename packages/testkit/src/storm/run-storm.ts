import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KeyRing } from '@tokenwarden/core';
import {
  fixtureEnv,
  openBroker,
  providerConfigFor,
  type BrokerFixture,
} from '../fixture/broker-fixture.ts';
import { runWorkers } from '../harness/run-workers.ts';
import { TestProvider } from '../provider/provider.ts';
import type { ProviderStats } from '../provider/types.ts';
import type { StormResult } from './storm-worker.ts';
import type { RecordedSpan } from '../tracing/index.ts';

export interface StormOptions {
  processes: number;
  callersPerProcess: number;
  /** Provider latency L, in milliseconds. */
  latencyMs: number;
  /** Where the SQLite file goes; a temporary directory (removed afterwards) by default. */
  dir?: string;
  /** Use this Postgres database instead of a SQLite file. Each process opens its own pool. */
  databaseUrl?: string;
  /**
   * Let each process go through refreshes of a credential of its own before the storm, as a
   * long-running worker would have (see `WARM_UP_RACES`), and wait until the background work that
   * leaves behind (JIT, garbage collection) is done. Those warm-up redemptions are not counted in
   * the report. Default false.
   */
  warm?: boolean;
  /** Record every process's spans in memory (the OpenTelemetry SDK), into `StormReport.spans`. */
  traced?: boolean;
}

/**
 * Warm-up refreshes per process after its first one: in each, two brokers of the process's own
 * (two pools, two listeners: two machines' worth) race for the refresh, so that the process has
 * run the leader's and the waiter's code as often as V8 needs to compile them. A worker that has
 * been running for a while has; one that has refreshed once still interprets both, and in a
 * storm of 8 processes on 2 cores, that compiling was most of the time beyond L.
 */
export const WARM_UP_RACES = 10;

export interface StormReport {
  callers: number;
  errors: string[];
  distinctTokens: number;
  versions: number[];
  /** Per process, the versions its callers got. */
  versionsByProcess: number[][];
  latenciesMs: number[];
  /** Per process, its slowest caller. */
  maxLatencyByProcessMs: number[];
  provider: ProviderStats;
  /** With `traced`: every span of every process. */
  spans: RecordedSpan[];
}

/**
 * A refresh storm: one expired credential on a shared SQLite file, `processes` child processes
 * released at the same instant, each with `callersPerProcess` concurrent getAccessToken calls.
 * Used by the test suite, `bench/storm.ts` and the `npm start` demo.
 */
export async function runStorm(options: StormOptions): Promise<StormReport> {
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'tw-storm-'));
  const provider = await TestProvider.start({ latencyMs: options.latencyMs });
  try {
    const fixture: BrokerFixture = {
      dbPath: join(dir, `storm-${Date.now()}.sqlite`),
      databaseUrl: options.databaseUrl,
      keys: KeyRing.generate('storm').serialize(),
      provider: providerConfigFor(provider),
    };
    const [connectionId, ...warmUpIds] = await importExpiredGrants(
      fixture,
      provider,
      options.warm ? 1 + options.processes : 1,
    );
    const results = await runWorkers<StormResult>({
      script: join(import.meta.dirname, 'storm-worker.ts'),
      args: [connectionId!, String(options.callersPerProcess)],
      perWorkerArgs:
        warmUpIds.length > 0 ? (i) => [warmUpIds[i]!, String(WARM_UP_RACES)] : undefined,
      env: { ...fixtureEnv(fixture), ...(options.traced ? { TW_TRACE: '1' } : {}) },
      count: options.processes,
      barrier: true,
    });
    const failed = results.filter((r) => r.exitCode !== 0 || !r.result);
    if (failed.length > 0) {
      throw new Error(`storm worker failed: ${failed.map((r) => r.stderr).join('\n')}`);
    }
    const all = results.map((r) => r.result!);
    return {
      callers: options.processes * options.callersPerProcess,
      errors: all.flatMap((r) => r.errors),
      distinctTokens: new Set(all.flatMap((r) => r.tokens)).size,
      versions: all.flatMap((r) => r.versions),
      versionsByProcess: all.map((r) => r.versions),
      latenciesMs: all.flatMap((r) => r.latenciesMs),
      maxLatencyByProcessMs: all.map((r) => Math.max(...r.latenciesMs)),
      provider: withoutWarmUp(provider.stats(), warmUpIds.length * (1 + WARM_UP_RACES)),
      spans: all.flatMap((r) => r.spans ?? []),
    };
  } finally {
    await provider.close();
    if (!options.dir) rmSync(dir, { recursive: true, force: true });
  }
}

function withoutWarmUp(stats: ProviderStats, warmUps: number): ProviderStats {
  return {
    ...stats,
    tokenRequests: stats.tokenRequests - warmUps,
    redemptions: stats.redemptions - warmUps,
  };
}

async function importExpiredGrants(
  fixture: BrokerFixture,
  provider: TestProvider,
  count: number,
): Promise<string[]> {
  const { broker, close } = await openBroker(fixture);
  try {
    const ids: string[] = [];
    for (let i = 0; i < count; i++) {
      const grant = provider.issueGrant();
      const { id } = await broker.importCredential({
        provider: fixture.provider.name,
        owner: 'demo-user',
        accessToken: grant.access_token,
        refreshToken: grant.refresh_token,
        expiresIn: 0,
      });
      ids.push(id);
    }
    return ids;
  } finally {
    await close();
  }
}

/** The q-quantile (0..1) of a list of numbers, nearest-rank. */
export function quantile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? NaN;
}

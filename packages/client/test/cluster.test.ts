// The SDK against the real server: two replicas (buildServer) on one Postgres database, each with
// its own pool, and the SDK in several worker processes.
import { join } from 'node:path';
import { runWorkers, type WorkerResult } from '@tokenwarden/testkit';
import { createTestDatabase, type TestDatabase } from '@tokenwarden/testkit/postgres';
import { afterEach, describe, expect, it } from 'vitest';
import { startCluster, type Cluster } from './helpers/cluster.ts';
import type { SdkWorkerResult } from './workers/sdk-worker.ts';

const WORKER = join(import.meta.dirname, 'workers', 'sdk-worker.ts');
let database: TestDatabase | undefined;
let cluster: Cluster | undefined;

afterEach(async () => {
  await cluster?.close();
  await database?.drop();
  cluster = undefined;
  database = undefined;
});

async function twoReplicas(latencyMs: number): Promise<Cluster> {
  database = await createTestDatabase();
  cluster = await startCluster({
    replicas: 2,
    databaseUrl: database.url,
    provider: { latencyMs },
  });
  return cluster;
}

function workers(
  c: Cluster,
  mode: 'token' | 'fetch',
  connectionId: string,
  processes: number,
  callers: number,
): Promise<WorkerResult<SdkWorkerResult>[]> {
  return runWorkers<SdkWorkerResult>({
    script: WORKER,
    count: processes,
    barrier: true,
    env: { TW_SDK_API_KEY: c.apiKey },
    // Processes alternate between the two replicas.
    perWorkerArgs: (i) => [
      mode,
      c.urls[i % c.urls.length]!,
      connectionId,
      String(callers),
      `${c.provider.url}/resource`,
    ],
  });
}

function collected(results: WorkerResult<SdkWorkerResult>[]): SdkWorkerResult[] {
  for (const r of results) {
    expect(r.exitCode, `worker ${r.index}: ${r.stderr}`).toBe(0);
  }
  return results.map((r) => r.result!);
}

describe('SDK on two replicas sharing Postgres', () => {
  it('4 processes × 50 callers on an expired credential: 1 redemption, 1 token', async () => {
    const c = await twoReplicas(100);
    const id = await c.importConnection({ expiresIn: 0 });

    const results = collected(await workers(c, 'token', id, 4, 50));

    expect(results.flatMap((r) => r.errors)).toEqual([]);
    const fingerprints = results.flatMap((r) => r.fingerprints);
    expect(fingerprints).toHaveLength(200);
    expect(new Set(fingerprints).size).toBe(1);
    expect(new Set(results.flatMap((r) => r.versions)).size).toBe(1);
    // Single-flight in each process: 50 callers, one request to the API.
    expect(results.map((r) => r.apiRequests)).toEqual(Array(4).fill({ token: 1, rejected: 0 }));
    expect(c.provider.stats()).toMatchObject({
      redemptions: 1,
      reuseViolations: 0,
      revokedFamilies: 0,
      invalidGrants: 0,
    });
  });

  it('fetch: 100 callers in 4 processes get a 401 at once; one refresh cluster-wide, all succeed', async () => {
    const c = await twoReplicas(50);
    const id = await c.importConnection({ expiresIn: 3600 });
    // The server still thinks the token is good for an hour; the resource server no longer does.
    expect(c.provider.expireAccessTokens()).toBe(1);

    const results = collected(await workers(c, 'fetch', id, 4, 25));

    expect(results.flatMap((r) => r.errors)).toEqual([]);
    expect(results.flatMap((r) => r.statuses)).toEqual(Array(100).fill(200));
    // Each process reported the refused version once, for its 25 callers.
    expect(results.map((r) => r.apiRequests)).toEqual(Array(4).fill({ token: 1, rejected: 1 }));
    // Every process ends up holding the same, refreshed token.
    const after = results.map((r) => r.fingerprints[0]);
    expect(new Set(after).size).toBe(1);
    expect(results.map((r) => r.versions[0])).toEqual([2, 2, 2, 2]);
    expect(c.provider.stats()).toMatchObject({
      redemptions: 1,
      reuseViolations: 0,
      revokedFamilies: 0,
      resourceRequests: 200,
      resourceRejections: 100,
    });
  });
});

// The activity helpers in 4 worker processes × 25 concurrent activities against one connection,
// with the real Tokenwarden HTTP API (2 replicas on one SQLite file) and the test provider
// (single-use rotating refresh tokens, reuse detection, 100 ms latency).
import { join } from 'node:path';
import { runWorkers, type WorkerResult } from '@tokenwarden/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { startLocalStack, type LocalStack } from '../../../examples/temporal/local-stack.ts';
import type { ActivityWorkerResult } from './workers/activity-worker.ts';

const WORKER = join(import.meta.dirname, 'workers', 'activity-worker.ts');
const PROCESSES = 4;
const ACTIVITIES = 25;
let stack: LocalStack | undefined;

afterEach(async () => {
  await stack?.close();
  stack = undefined;
});

async function run(
  s: LocalStack,
  connectionId: string,
  warmth: 'warm' | 'cold',
): Promise<ActivityWorkerResult[]> {
  const results: WorkerResult<ActivityWorkerResult>[] = await runWorkers<ActivityWorkerResult>({
    script: WORKER,
    count: PROCESSES,
    barrier: true,
    timeoutMs: 60_000,
    env: { TW_API_KEY: s.apiKey },
    // Processes alternate between the replicas.
    perWorkerArgs: (i) => [
      s.urls[i % s.urls.length]!,
      connectionId,
      String(ACTIVITIES),
      s.resourceUrl,
      warmth,
    ],
  });
  for (const r of results) {
    expect(r.exitCode, `worker ${r.index}: ${r.stderr}`).toBe(0);
  }
  return results.map((r) => r.result!);
}

describe('4 worker processes × 25 concurrent activities on one connection', () => {
  it('the connection is expired: exactly 1 redemption, every activity succeeds', async () => {
    stack = await startLocalStack({ replicas: 2, provider: { latencyMs: 100 } });
    const id = await stack.importConnection({ expiresIn: 0 });

    const results = await run(stack, id, 'cold');

    expect(results.flatMap((r) => r.failures)).toEqual([]);
    expect(results.map((r) => r.succeeded)).toEqual(Array(PROCESSES).fill(ACTIVITIES));
    // Single-flight in each process: 25 activities, one token request.
    expect(results.map((r) => r.apiRequests)).toEqual(
      Array(PROCESSES).fill({ token: 1, rejected: 0 }),
    );
    expect(new Set(results.map((r) => r.fingerprint)).size).toBe(1);
    // Every activity waited for the refresh (the provider takes 100 ms), and heartbeated meanwhile.
    for (const r of results) expect(r.heartbeats).toBeGreaterThanOrEqual(ACTIVITIES);
    expect(stack.provider.stats()).toMatchObject({
      redemptions: 1,
      reuseViolations: 0,
      revokedFamilies: 0,
      invalidGrants: 0,
      resourceRequests: PROCESSES * ACTIVITIES,
      resourceRejections: 0,
    });
  });

  it('the token expires during the run: 100 × 401, exactly 1 redemption, every activity succeeds', async () => {
    stack = await startLocalStack({ replicas: 2, provider: { latencyMs: 100 } });
    const id = await stack.importConnection({ expiresIn: 3600 });
    // Tokenwarden still thinks the token is good for an hour; the resource server no longer does.
    expect(stack.provider.expireAccessTokens()).toBe(1);

    // Each worker already holds that token when the activities start, as a long-running one would.
    const results = await run(stack, id, 'warm');

    expect(results.flatMap((r) => r.failures)).toEqual([]);
    expect(results.map((r) => r.succeeded)).toEqual(Array(PROCESSES).fill(ACTIVITIES));
    // Each process reported the refused version once, for its 25 activities.
    expect(results.map((r) => r.apiRequests)).toEqual(
      Array(PROCESSES).fill({ token: 1, rejected: 1 }),
    );
    expect(new Set(results.map((r) => r.fingerprint)).size).toBe(1);
    expect(results.map((r) => r.version)).toEqual(Array(PROCESSES).fill(2));
    expect(stack.provider.stats()).toMatchObject({
      redemptions: 1,
      reuseViolations: 0,
      revokedFamilies: 0,
      invalidGrants: 0,
      resourceRequests: 2 * PROCESSES * ACTIVITIES,
      resourceRejections: PROCESSES * ACTIVITIES,
    });
  });
});

import type { ProtocolMeasure } from '@tokenwarden/core';
import { openBroker, runStorm, type StormReport } from '@tokenwarden/testkit';
import { createTestDatabase } from '@tokenwarden/testkit/postgres';
import {
  byTrace,
  traceThisProcess,
  type MemorySpans,
  type RecordedSpan,
} from '@tokenwarden/testkit/tracing';
import { afterEach, describe, expect, it } from 'vitest';
import { scenario, type Scenario } from './helpers.ts';

/** Any token the test provider issues (`opaque('at_')`, `opaque('rt_')`), imported or refreshed. */
const ISSUED_TOKEN = /\b(?:at|rt)_[A-Za-z0-9_-]{32}/;
/** The test provider's client secret (its default, `provider/types.ts`). */
const CLIENT_SECRET = 'tw-test-secret';

/**
 * A storm on an expired credential, each process recording its spans with the SDK's in-memory
 * exporter: one trace per caller, one of them refreshes, and every other caller's wait links to
 * that refresh's commit, across processes (the row's `commit_trace`, or on Postgres the
 * notification that carries it).
 */
function expectOneRefreshLinkedFromEveryWaiter(storm: StormReport, callers: number): void {
  expect(storm.errors).toEqual([]);
  expect(storm.provider).toMatchObject({ redemptions: 1, reuseViolations: 0 });
  const traces = byTrace(storm.spans);
  expect(traces).toHaveLength(callers);
  for (const spans of traces)
    expect(roots(spans).map((s) => s.name)).toEqual(['tokenwarden.hand_out']);

  const leaders = traces.filter((t) => t.some((s) => s.name === 'tokenwarden.provider_request'));
  expect(leaders).toHaveLength(1);
  const leader = leaders[0]!;
  const request = leader.find((s) => s.name === 'tokenwarden.provider_request')!;
  expect(request.attributes).toMatchObject({
    'tokenwarden.provider': 'test',
    'tokenwarden.outcome': 'tokens',
    'http.response.status_code': 200,
  });
  const commit = leader.find((s) => s.name === 'tokenwarden.commit')!;
  expect(commit.attributes).toMatchObject({
    'tokenwarden.outcome': 'committed',
    'tokenwarden.version': 2,
  });
  expect(leader.find((s) => s.name === 'tokenwarden.lease')!.attributes).toMatchObject({
    'tokenwarden.outcome': 'won',
  });
  expect(roots(leader)[0]!.attributes).toMatchObject({ 'tokenwarden.outcome': 'refreshed' });

  for (const waiter of traces.filter((t) => t !== leader)) {
    const waits = waiter.filter((s) => s.name === 'tokenwarden.wait');
    expect(waits.at(-1)!.links).toEqual([{ traceId: commit.traceId, spanId: commit.spanId }]);
    // It found the lease held (having perhaps lost the race for it first), and never won it.
    const leases = waiter.filter((s) => s.name === 'tokenwarden.lease');
    expect(leases.map((s) => s.attributes['tokenwarden.outcome'])).toContain('held');
    expect(leases.map((s) => s.attributes['tokenwarden.outcome'])).not.toContain('won');
    expect(roots(waiter)[0]!.attributes).toMatchObject({
      'tokenwarden.outcome': 'woken',
      'tokenwarden.version': 2,
    });
  }

  const exported = JSON.stringify(storm.spans);
  expect(exported).not.toMatch(ISSUED_TOKEN);
  expect(exported).not.toContain(CLIENT_SECRET);
}

/** This test process's spans, in memory (a tracer provider registers once per process). */
let recorder: MemorySpans | undefined;
function recording(): MemorySpans {
  recorder ??= traceThisProcess();
  recorder.reset();
  return recorder;
}

function roots(spans: RecordedSpan[]): RecordedSpan[] {
  const ids = new Set(spans.map((s) => s.spanId));
  return spans.filter((s) => s.parentSpanId === undefined || !ids.has(s.parentSpanId));
}

// Both storms at once: most of each is starting its 3 processes, which the two share the cores for.
describe.concurrent('traces of a refresh storm', () => {
  // The provider's latency keeps the leader's lease held while the other processes arrive.
  const storm = { processes: 3, callersPerProcess: 1, latencyMs: 300, traced: true };

  it('3 processes on one SQLite file: one trace per caller, one refresh, waiters linked to its commit', async () => {
    expectOneRefreshLinkedFromEveryWaiter(await runStorm(storm), 3);
  });

  it('3 processes on one Postgres, woken by notification: the same links', async () => {
    const database = await createTestDatabase();
    try {
      expectOneRefreshLinkedFromEveryWaiter(
        await runStorm({ ...storm, databaseUrl: database.url }),
        3,
      );
    } finally {
      await database.drop();
    }
  });
});

describe('traces of callers in one process', () => {
  let s: Scenario | undefined;
  afterEach(async () => {
    await s?.cleanup();
  });

  it('3 callers share one flight: one trace each, the joiners linked to the hand-out that refreshed', async () => {
    const recorder = recording();
    s = await scenario();
    const { id } = await s.importGrant({ expiresIn: 0 });
    await Promise.all([1, 2, 3].map(() => s!.broker.getAccessToken(id)));

    const traces = byTrace(recorder.spans());
    expect(traces).toHaveLength(3);
    const leader = traces.find((t) => t.some((x) => x.name === 'tokenwarden.provider_request'))!;
    const leaderHandOut = roots(leader)[0]!;
    expect(leaderHandOut.attributes['tokenwarden.outcome']).toBe('refreshed');
    for (const joiner of traces.filter((t) => t !== leader)) {
      expect(roots(joiner)[0]!.attributes).toMatchObject({
        'tokenwarden.outcome': 'single_flight',
        'tokenwarden.version': 2,
      });
      const flight = joiner.find((x) => x.name === 'tokenwarden.single_flight')!;
      expect(flight.links).toEqual([
        { traceId: leaderHandOut.traceId, spanId: leaderHandOut.spanId },
      ]);
    }
  });
});

describe('measures for metrics (onMeasure)', () => {
  let s: Scenario | undefined;
  afterEach(async () => {
    await s?.cleanup();
  });

  it("two brokers on one expired credential: one expiry-to-refresh, the other's lease wait; a scheduler's lag", async () => {
    const measures: ProtocolMeasure[] = [];
    const onMeasure = (m: ProtocolMeasure) => measures.push(m);
    s = await scenario({ provider: { latencyMs: 200 }, broker: { onMeasure } });
    const other = await openBroker(s.fixture, { onMeasure });
    try {
      const { id } = await s.importGrant({ expiresIn: 0 });
      const tokens = await Promise.all([s.broker, other.broker].map((b) => b.getAccessToken(id)));
      expect(new Set(tokens.map((t) => t.version))).toEqual(new Set([2]));
    } finally {
      await other.close();
    }
    const byKind = (kind: ProtocolMeasure['kind']) => measures.filter((m) => m.kind === kind);
    expect(byKind('expiry_to_refresh')).toEqual([
      { kind: 'expiry_to_refresh', provider: 'test', ms: expect.any(Number) },
    ]);
    expect(byKind('expiry_to_refresh')[0]!.ms).toBeGreaterThanOrEqual(0); // it had expired
    expect(byKind('lease_wait').length).toBeGreaterThanOrEqual(1);
    expect(byKind('lease_wait').every((m) => m.provider === 'test' && m.ms >= 0)).toBe(true);

    // A credential due at once, claimed by a scheduler's tick: its lag is measured; the claim
    // that found it is a span, the tick after, which finds nothing, is none.
    await s.importGrant({ expiresIn: 0 });
    const spans = recording();
    const scheduler = s.broker.scheduler();
    expect(await scheduler.tick()).toBe(1);
    expect(await scheduler.tick()).toBe(0);
    expect(byKind('scheduler_lag')).toEqual([
      { kind: 'scheduler_lag', provider: 'test', ms: expect.any(Number) },
    ]);
    const claims = spans.spans().filter((x) => x.name === 'tokenwarden.scheduler.claim');
    expect(claims.map((x) => x.attributes['tokenwarden.count'])).toEqual([1]);
    const refresh = spans.spans().find((x) => x.name === 'tokenwarden.scheduler.refresh')!;
    expect(refresh.parentSpanId).toBeUndefined();
    expect(spans.spans().find((x) => x.name === 'tokenwarden.commit')!.parentSpanId).toBe(
      refresh.spanId,
    );
  });
});

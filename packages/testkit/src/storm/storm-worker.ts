// One "machine" in a refresh storm: opens the shared broker, waits for the start signal, then
// fires `callers` concurrent getAccessToken calls and reports what each got (fingerprints only).
import { performance } from 'node:perf_hooks';
import { openBrokerFromEnv } from '../fixture/broker-fixture.ts';
import { reportResult, waitForStart } from '../harness/worker.ts';
import { tokenFingerprint } from '../provider/state.ts';
import type { RecordedSpan } from '../tracing/index.ts';

export interface StormResult {
  tokens: string[];
  versions: number[];
  latenciesMs: number[];
  errors: string[];
  /** With `TW_TRACE=1`: every span this process finished. */
  spans?: RecordedSpan[];
}

/** Long enough for every process of a storm to be done: they all finish within a few tens of ms. */
const AFTER_STORM_PAUSE_MS = 300;

const [connectionId, callers, warmUpId, warmUpRaces] = process.argv.slice(2);
// Before the broker exists: its spans go to this recorder (the SDK is loaded only when asked).
const traced = process.env.TW_TRACE
  ? (await import('../tracing/index.ts')).traceThisProcess()
  : undefined;
const { broker, close } = await openBrokerFromEnv();
if (warmUpId) {
  // A worker in production has been running for a while: its first refreshes (module loading,
  // JIT, the provider's TCP connection) are behind it, as leader and as waiter (see
  // WARM_UP_RACES). Refresh a credential of its own, then race a second broker for it.
  await broker.getAccessToken(warmUpId);
  const rival = await openBrokerFromEnv();
  for (let race = 0; race < Number(warmUpRaces ?? 0); race++) {
    const { version } = await broker.getAccessToken(warmUpId);
    await Promise.all([
      broker.reportRejected(warmUpId, version),
      rival.broker.reportRejected(warmUpId, version),
    ]);
  }
  await rival.close();
}
await broker.getConnection(connectionId!);
if (warmUpId) await settle();
await waitForStart();
const started = performance.now();
const outcomes = await Promise.allSettled(
  Array.from({ length: Number(callers ?? 50) }, async () => {
    const token = await broker.getAccessToken(connectionId!);
    return { token, latency: performance.now() - started };
  }),
);
// The other processes may still be handing out tokens: this one's bookkeeping (hashing its
// tokens, reporting, closing its pool, exiting) waits, so as not to take their CPU (on a
// 2-core machine; separate machines would not share it).
await new Promise((resolve) => setTimeout(resolve, AFTER_STORM_PAUSE_MS));
const result: StormResult = { tokens: [], versions: [], latenciesMs: [], errors: [] };
if (traced) result.spans = traced.spans();
for (const outcome of outcomes) {
  if (outcome.status === 'rejected') {
    result.errors.push(String((outcome.reason as { code?: string }).code ?? outcome.reason));
    continue;
  }
  result.tokens.push(tokenFingerprint(outcome.value.token.accessToken));
  result.versions.push(outcome.value.token.version);
  result.latenciesMs.push(outcome.value.latency);
}
await reportResult(result);
await close();

/**
 * Returns once this process has been idle for two 100 ms windows in a row (or after 3 s). After
 * its first refresh a Node process goes on working in the background for a few hundred
 * milliseconds, some 50 ms of CPU: V8 compiles what got hot and collects what module loading
 * allocated. A long-running worker is past that. Released while it is still at it, a process
 * spends 3 to 5 times the CPU the storm itself needs (measured with 8 processes on 2 cores), and
 * every process's refresh waits for the others' start-up.
 */
async function settle(): Promise<void> {
  const windowMs = 100;
  const deadline = performance.now() + 3_000;
  for (let quiet = 0; quiet < 2 && performance.now() < deadline;) {
    const before = process.cpuUsage();
    await new Promise((resolve) => setTimeout(resolve, windowMs));
    const used = process.cpuUsage(before);
    quiet = (used.user + used.system) / 1000 < windowMs * 0.02 ? quiet + 1 : 0;
  }
}

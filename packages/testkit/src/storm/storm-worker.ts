// One "machine" in a refresh storm: opens the shared broker, waits for the start signal, then
// fires `callers` concurrent getAccessToken calls and reports what each got (fingerprints only).
import { performance } from 'node:perf_hooks';
import { openBrokerFromEnv, reportResult, tokenFingerprint, waitForStart } from '../index.ts';

export interface StormResult {
  tokens: string[];
  versions: number[];
  latenciesMs: number[];
  errors: string[];
}

const [connectionId, callers, warmUpId] = process.argv.slice(2);
const { broker, close } = await openBrokerFromEnv();
if (warmUpId) {
  // A worker in production has been running for a while: its first refresh (module loading,
  // JIT, the provider's TCP connection) is behind it. Refresh a credential of its own first.
  await broker.getAccessToken(warmUpId);
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
const result: StormResult = { tokens: [], versions: [], latenciesMs: [], errors: [] };
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

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

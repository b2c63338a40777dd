// Asks for a machine token with `callers` concurrent calls once every worker is ready, and
// reports what each call got: { token: fingerprint, version } or { error: code }.
import {
  openBrokerFromEnv,
  reportResult,
  tokenFingerprint,
  waitForStart,
} from '@tokenwarden/testkit';

const [connectionId, callers] = [process.argv[2]!, Number(process.argv[3] ?? 10)];
const { broker, close } = await openBrokerFromEnv();
await waitForStart();
const outcomes = await Promise.allSettled(
  Array.from({ length: callers }, () => broker.getAccessToken(connectionId)),
);
await reportResult(
  outcomes.map((o) =>
    o.status === 'fulfilled'
      ? { token: tokenFingerprint(o.value.accessToken), version: o.value.version }
      : { error: String((o.reason as { code?: string }).code ?? o.reason) },
  ),
);
await close();

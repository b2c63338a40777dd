// A long-lived worker for expiry rounds: on each `ROUND <n>` line it fires `callers` concurrent
// getAccessToken calls and answers `ROUND_DONE <json>`; `EXIT` ends it.
import { createInterface } from 'node:readline';
import { openBrokerFromEnv, tokenFingerprint } from '@tokenwarden/testkit';

const [connectionId, callers] = [process.argv[2]!, Number(process.argv[3] ?? 10)];
const { broker, close } = await openBrokerFromEnv();
process.stdout.write('READY\n');
for await (const line of createInterface({ input: process.stdin })) {
  if (line === 'EXIT') break;
  const round = Number(line.replace(/^ROUND /, ''));
  const outcomes = await Promise.allSettled(
    Array.from({ length: callers }, () => broker.getAccessToken(connectionId)),
  );
  const answer = outcomes.map((o) =>
    o.status === 'fulfilled'
      ? { token: tokenFingerprint(o.value.accessToken), version: o.value.version }
      : { error: String((o.reason as { code?: string }).code ?? o.reason) },
  );
  process.stdout.write(`ROUND_DONE ${JSON.stringify({ round, answer })}\n`);
}
await close();

// Asks for a token once and SIGKILLs itself right after the protocol step named by TW_CRASH_AT,
// like a machine losing power there. Without TW_CRASH_AT it reports what it got.
import { openBrokerFromEnv } from '../fixture/broker-fixture.ts';
import { reportResult } from '../harness/worker.ts';

const crashAt = process.env.TW_CRASH_AT;
const { broker } = await openBrokerFromEnv({
  onStep: (step) => {
    if (step === crashAt) process.kill(process.pid, 'SIGKILL');
  },
});
try {
  const token = await broker.getAccessToken(process.argv[2]!);
  await reportResult({ version: token.version });
} catch (error) {
  await reportResult({
    error: (error as { code?: string }).code,
    reason: (error as { reason?: string }).reason,
  });
}

// Keeps refreshes coming for a while: `loops` concurrent loops each pick a random connection and
// report the version they last saw as rejected (so it is refreshed once, by someone), then count
// what they got back. Reports { tokens, errors: { [code]: count } }.
import { openBrokerFromEnv, reportResult, waitForStart } from '@tokenwarden/testkit';

const [durationMs, loops, idList] = [
  Number(process.argv[2]),
  Number(process.argv[3]),
  process.argv[4]!,
];
const ids = idList.split(',');
const { broker, close } = await openBrokerFromEnv();
const seen = new Map<string, number>();
const result = { tokens: 0, errors: {} as Record<string, number> };
await waitForStart();
const deadline = Date.now() + durationMs;

await Promise.all(
  Array.from({ length: loops }, async () => {
    while (Date.now() < deadline) {
      const id = ids[Math.floor(Math.random() * ids.length)]!;
      try {
        const version = seen.get(id);
        const token = version
          ? await broker.reportRejected(id, version)
          : await broker.getAccessToken(id);
        seen.set(id, token.version);
        result.tokens++;
      } catch (error) {
        const code = String((error as { code?: string }).code ?? (error as Error).name);
        result.errors[code] = (result.errors[code] ?? 0) + 1;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  }),
);
await reportResult(result);
await close();

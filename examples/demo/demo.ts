// `npm start`: a refresh storm you can watch. A test OAuth provider with single-use, rotating
// refresh tokens and reuse detection; one expired credential in a SQLite file; several worker
// processes that all ask for a token at the same instant.
import { runStorm } from '@tokenwarden/testkit';

const processes = 4;
const callersPerProcess = 25;
const latencyMs = 100;

console.log(
  `Tokenwarden demo: ${processes} worker processes × ${callersPerProcess} concurrent callers ask for ` +
    `the same expired token (provider latency ${latencyMs} ms, rotating single-use refresh tokens).\n`,
);
const storm = await runStorm({ processes, callersPerProcess, latencyMs });
storm.versionsByProcess.forEach((versions, i) => {
  const counts = Object.entries(
    versions.reduce<Record<number, number>>((acc, v) => ({ ...acc, [v]: (acc[v] ?? 0) + 1 }), {}),
  ).map(([version, n]) => `${n} × version ${version}`);
  console.log(`  worker ${i + 1}: ${counts.join(', ')}`);
});
console.log(`
  callers that asked:           ${storm.callers}
  refreshes the provider saw:   ${storm.provider.redemptions}
  distinct access tokens:       ${storm.distinctTokens}
  reuse violations:             ${storm.provider.reuseViolations}
  errors:                       ${storm.errors.length}

One refresh, one token for everyone: the refresh token was redeemed exactly once.`);
if (storm.provider.redemptions !== 1 || storm.distinctTokens !== 1 || storm.errors.length > 0) {
  process.exitCode = 1;
}

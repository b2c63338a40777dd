// A Postgres failover in the middle of a refresh storm: the primary's machine dies while every
// leader's commit of a rotated refresh token waits for the synchronous standby, and the standby is
// promoted. The store (on the host list of both) finds the new primary, the leaders' commits land
// there within their leases, and nothing the provider rotated is lost. bench/failover.ts runs the
// same scenario larger, and asynchronous replication next to it (which loses those rotations).
import { runFailover } from '@tokenwarden/testkit';
import { expect, it } from 'vitest';

it('with synchronous replication, loses no rotated refresh token and every caller gets a working token', async () => {
  const report = await runFailover({
    synchronous: true,
    credentials: 8,
    callersPerCredential: 4,
    latencyMs: 300,
  });
  expect(report).toEqual({
    credentials: 8,
    callers: 32,
    rotations: 8, // one redemption per credential: waiters never redeem, the failover made none
    commitsInFlight: 8, // every rotation was in doubt when the primary died
    callersWithWorkingToken: 32,
    callerErrors: [],
    lostRefreshTokens: 0,
    reuseViolations: 0,
    statuses: { active: 8 },
  });
});

// The example end to end against a real Temporal server: the test provider, Tokenwarden, 2 worker
// processes and the fan-out workflow, with access tokens expiring during the run. Runs only when
// TEMPORAL_ADDRESS is set; a Temporal server cannot be downloaded on the machines this suite was
// written on, so there it reports itself as skipped, with the reason.
import { describe, expect, it } from 'vitest';
import { runExample } from '../../../examples/temporal/run.ts';

const SKIPPED =
  'TEMPORAL_ADDRESS is not set: no Temporal server to run against (start one with ' +
  '`temporal server start-dev` and set TEMPORAL_ADDRESS=localhost:7233)';

describe('end to end on a Temporal server', () => {
  it('fan-out over 2 worker processes while tokens expire: every call succeeds, at most one redemption per expiry', async (ctx) => {
    const address = process.env.TEMPORAL_ADDRESS;
    if (!address) return ctx.skip(SKIPPED);

    const report = await runExample({
      address,
      namespace: process.env.TEMPORAL_NAMESPACE,
      workers: 2,
      calls: 100,
      concurrency: 20,
      pauseBetweenCallsMs: 200,
      expireEveryMs: 500,
    });

    expect(report.result).toEqual({ calls: 100, succeeded: 100, waitedForReauthorization: 0 });
    expect(report.provider).toMatchObject({ reuseViolations: 0, revokedFamilies: 0 });
    expect(report.provider.redemptions).toBeLessThanOrEqual(report.expiries);
    if (report.provider.resourceRejections > 0) {
      expect(report.provider.redemptions).toBeGreaterThanOrEqual(1);
    }
  }, 120_000);
});

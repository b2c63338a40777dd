// The console's overview, from what the server already keeps: the store (connections by status
// and provider, overdue refreshes, connections about to end), the audit log (every refresh the
// broker led, on any replica, is a `connection.refresh` row) and this process's circuit
// breakers. No second monitoring system, and nothing kept in memory for it.
import type { Overview } from '@tokenwarden/console/api';
import type { FastifyPluginAsync } from 'fastify';
import type { ServerContext } from '../http/context.ts';
import { iso } from '../http/views.ts';
import { consoleRows } from './console-connections.ts';

/** The refresh chart's window and its resolution. */
const ACTIVITY_WINDOW_MS = 3 * 3_600_000;
const BUCKET_MS = 60_000;
/** "Ending soon": within a day; the overview lists the first few, the table filters the rest. */
const ENDING_WITHIN_MS = 24 * 3_600_000;
const ENDING_LISTED = 20;

export const consoleOverviewRoutes: FastifyPluginAsync<ServerContext> = async (app, ctx) => {
  app.get('/v1/console/overview', { schema: { hide: true } }, async () => overview(ctx));
};

export async function overview(ctx: ServerContext, nowMs = Date.now()): Promise<Overview> {
  await ctx.audit.flush(); // this replica's buffered refreshes belong in the chart too
  const since = Math.floor((nowMs - ACTIVITY_WINDOW_MS) / BUCKET_MS) * BUCKET_MS;
  const [counts, overdue, buckets, ending] = await Promise.all([
    ctx.service.countCredentials(),
    ctx.service.overdueRefreshes(),
    ctx.service.countAudit({ action: 'connection.refresh', since, bucketMs: BUCKET_MS }),
    ctx.service.listCredentials({
      status: 'active',
      endsBefore: nowMs + ENDING_WITHIN_MS,
      limit: ENDING_LISTED,
    }),
  ]);
  return {
    generated_at: iso(nowMs),
    counts,
    refreshes: {
      since: iso(since),
      bucket_seconds: BUCKET_MS / 1000,
      buckets: buckets.map((bucket) => ({
        provider: bucket.provider ?? 'unknown',
        outcome: bucket.outcome,
        at: iso(bucket.bucket),
        count: bucket.count,
      })),
    },
    breakers: ctx.broker.breakerStates().map((breaker) => ({
      provider: breaker.provider,
      state: breaker.state,
      consecutive_failures: breaker.consecutiveFailures,
      refusing_for_ms: Math.round(breaker.refusingForMs),
    })),
    scheduler: { overdue: overdue.count, lag_ms: overdue.oldestMs },
    ending_soon: await consoleRows(ctx, ending),
  };
}

// A connection's timeline for the console, from the audit log: what happened to it, newest
// first, with runs of hand-outs folded into one entry (a busy connection hands out a token
// thousands of times between two refreshes; the operator wants the refreshes).
import type { TimelineEntry } from '@tokenwarden/console/api';
import type { AuditRecord } from '@tokenwarden/core';
import type { ServerContext } from '../http/context.ts';
import { iso } from '../http/views.ts';

/** Folded: consecutive events with these actions, by the same actor with the same outcome. */
const FOLDED = new Set(['token.read']);

/** The newest `limit` audit events about a connection, folded. */
export async function connectionTimeline(
  ctx: ServerContext,
  connectionId: string,
  limit = 500,
): Promise<TimelineEntry[]> {
  await ctx.audit.flush(); // this replica's buffered events belong in it too
  const events = await ctx.service.listAudit({ connectionId, limit });
  return foldTimeline(events);
}

export function foldTimeline(events: readonly AuditRecord[]): TimelineEntry[] {
  const entries: TimelineEntry[] = [];
  for (const event of events) {
    const last = entries[entries.length - 1];
    if (
      last &&
      FOLDED.has(event.action) &&
      last.action === event.action &&
      last.actor === event.actor &&
      last.outcome === event.outcome
    ) {
      last.count += 1;
      last.first_at = iso(event.at);
      continue;
    }
    const at = iso(event.at);
    entries.push({
      action: event.action,
      actor: event.actor,
      outcome: event.outcome,
      at,
      first_at: at,
      count: 1,
    });
  }
  return entries;
}

import type { BrokerEvent, NewAuditEvent } from '@tokenwarden/core';

/**
 * The audit row for a refresh the broker led. Inside a request (a hand-out that had to refresh)
 * it carries that request's id and caller; from the scheduler, actor `system`.
 */
export function refreshAuditEvent(
  event: BrokerEvent,
  scope: { requestId: string; actor: string } | undefined,
): NewAuditEvent {
  const common = {
    requestId: scope?.requestId ?? 'scheduler',
    actor: scope?.actor ?? 'system',
    action: 'connection.refresh',
    connectionId: event.connectionId,
    owner: null,
    provider: event.provider,
  };
  switch (event.type) {
    case 'refreshed':
      return {
        ...common,
        outcome: 'ok',
        detail: JSON.stringify({ version: event.version, recovered: event.recovered }),
      };
    case 'needs_reauth':
      return {
        ...common,
        outcome: 'needs_reauth',
        detail: JSON.stringify({
          version: event.version,
          reason: event.reason,
          error: event.error,
        }),
      };
    case 'refresh_failed':
      return {
        ...common,
        outcome: 'refresh_unavailable',
        detail: JSON.stringify({
          error: event.error,
          in_doubt: event.inDoubt,
          retry_after_ms: event.retryAfterMs,
        }),
      };
  }
}

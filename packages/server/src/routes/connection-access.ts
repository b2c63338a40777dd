import type { ConnectionInfo, ServiceAction } from '@tokenwarden/core';
import type { FastifyRequest } from 'fastify';
import { allows, type GrantTarget } from '../auth/principal.ts';
import { errorCodeOf, ForbiddenError } from '../errors.ts';
import { recordAudit, type ServerContext } from '../http/context.ts';

/** The connection, if the caller holds a grant for `action` on its owner and provider. */
export async function authorizedConnection(
  ctx: ServerContext,
  request: FastifyRequest,
  id: string,
  action: ServiceAction,
): Promise<ConnectionInfo> {
  const info = await ctx.broker.getConnection(id);
  ctx.owners.set(id, info);
  if (!allows(request.principal, action, info)) {
    throw new ConnectionForbiddenError(action, info);
  }
  return info;
}

/** Carries the connection a caller was refused, so the audit row can name its owner and provider. */
export class ConnectionForbiddenError extends ForbiddenError {
  constructor(
    action: ServiceAction,
    readonly connection: GrantTarget & { id: string },
  ) {
    super(`This API key has no ${action} grant for this connection's owner and provider.`);
  }
}

/**
 * Records the failure of an audited action on connection `id`, with owner and provider when
 * they are known (always for a refusal).
 */
export function auditFailure(
  ctx: ServerContext,
  request: FastifyRequest,
  action: string,
  id: string,
  error: unknown,
  known?: GrantTarget,
): void {
  const connection = error instanceof ConnectionForbiddenError ? error.connection : known;
  recordAudit(ctx, request, {
    action,
    outcome: errorCodeOf(error),
    connectionId: id,
    owner: connection?.owner,
    provider: connection?.provider,
  });
}

/**
 * Runs `action` on connection `id` for a caller holding `grant` on it, audited either way: a
 * failure with owner and provider once they are known, success with `detail(result, info)`.
 */
export async function auditedOnConnection<T>(
  ctx: ServerContext,
  request: FastifyRequest,
  id: string,
  action: string,
  grant: ServiceAction,
  run: (info: ConnectionInfo) => Promise<T>,
  detail: (result: T, info: ConnectionInfo) => Record<string, unknown>,
): Promise<T> {
  let info: ConnectionInfo | undefined;
  let result: T;
  try {
    info = await authorizedConnection(ctx, request, id, grant);
    result = await run(info);
  } catch (error) {
    auditFailure(ctx, request, action, id, error, info);
    throw error;
  }
  recordAudit(ctx, request, {
    action,
    outcome: 'ok',
    connectionId: id,
    owner: info.owner,
    provider: info.provider,
    detail: detail(result, info),
  });
  return result;
}

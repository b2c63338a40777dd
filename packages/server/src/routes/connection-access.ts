import {
  NotFoundError,
  SERVICE_ACTIONS,
  type ConnectionInfo,
  type ServiceAction,
} from '@tokenwarden/core';
import type { FastifyRequest } from 'fastify';
import { allows, type GrantTarget } from '../auth/principal.ts';
import { errorCodeOf, ForbiddenError } from '../errors.ts';
import { recordAudit, type ServerContext } from '../http/context.ts';

/**
 * The connection, if the caller holds a grant for `action` on its owner and provider. A caller
 * holding no grant at all on it is answered as if it did not exist (404): a 403 would tell it
 * that the id is real. One holding another action on it knows it exists, and gets the 403.
 */
export async function authorizedConnection(
  ctx: ServerContext,
  request: FastifyRequest,
  id: string,
  action: ServiceAction,
): Promise<ConnectionInfo> {
  const info = await ctx.broker.getConnection(id);
  ctx.owners.set(id, info);
  requireGrant(request, action, id, info);
  return info;
}

/**
 * Throws the refusal (`ConnectionForbiddenError` or `ConnectionHiddenError`) unless allowed. On
 * the hand-out's path: nothing is allocated when the grant allows.
 */
export function requireGrant(
  request: FastifyRequest,
  action: ServiceAction,
  id: string,
  target: GrantTarget,
): void {
  if (allows(request.principal, action, target)) return;
  const connection = { id, ...target };
  const known = SERVICE_ACTIONS.some((other) => allows(request.principal, other, target));
  throw known
    ? new ConnectionForbiddenError(action, connection)
    : new ConnectionHiddenError(connection);
}

/** Whether `error` refused a caller a connection (answered 403 or 404, audited `forbidden`). */
export function isRefusal(
  error: unknown,
): error is ConnectionForbiddenError | ConnectionHiddenError {
  return error instanceof ConnectionForbiddenError || error instanceof ConnectionHiddenError;
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
 * A refusal answered as `not_found`, word for word what a missing id gets; the audit log still
 * records it as `forbidden`, with the owner and provider.
 */
export class ConnectionHiddenError extends NotFoundError {
  constructor(readonly connection: GrantTarget & { id: string }) {
    super(connection.id);
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
  const refused =
    error instanceof ConnectionForbiddenError || error instanceof ConnectionHiddenError;
  const connection = refused ? error.connection : known;
  recordAudit(ctx, request, {
    action,
    outcome: refused ? 'forbidden' : errorCodeOf(error),
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

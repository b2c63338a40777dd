import type {
  ConnectFlow,
  CredentialBroker,
  KyselyStore,
  NewAuditEvent,
  ServiceStore,
} from '@tokenwarden/core';
import type { FastifyRequest } from 'fastify';
import type { AuditWriter } from '../audit/audit-writer.ts';
import type { Authenticator } from '../auth/authenticator.ts';
import { actorOf, type Principal } from '../auth/principal.ts';
import { ForbiddenError } from '../errors.ts';
import type { ServerMetrics } from '../metrics.ts';
import type { HandOutScopes } from './hand-out-scopes.ts';
import type { OwnerCache } from './owner-cache.ts';

/** What every route plugin gets as its options: the one broker and its helpers. */
export interface ServerContext {
  broker: CredentialBroker;
  store: KyselyStore;
  service: ServiceStore;
  auth: Authenticator;
  audit: AuditWriter;
  metrics: ServerMetrics | undefined;
  handOuts: HandOutScopes;
  owners: OwnerCache;
  /** What the broker sends provider requests with (discovery uses it too). */
  fetch: typeof fetch;
  /** The connect flow, when the server has a public callback URL (`connect` option). */
  connect: ConnectSettings | undefined;
}

export interface ConnectSettings {
  flow: ConnectFlow;
  /** When set, a session's redirect_uri must have one of these origins. */
  redirectOrigins: ReadonlySet<string> | undefined;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the authentication hook of every protected route. */
    principal: Principal;
  }
  interface FastifyContextConfig {
    /** The audit action of a route, also used when a caller is refused at the door. */
    auditAction?: string;
    /**
     * 'failures': the access log gets a line only for answers of 400 and above. For routes whose
     * successes are each in the audit log already (the hand-outs); default every request.
     */
    accessLog?: 'all' | 'failures';
  }
}

/** onRequest hook: any valid key (admin or service client). Runs before the body is parsed. */
export function authenticate(ctx: ServerContext) {
  return async (request: FastifyRequest): Promise<void> => {
    request.principal = await ctx.auth.authenticate(
      request.headers.authorization,
      request.raw.socket,
    );
  };
}

/** onRequest hook for admin routes: the admin key only; a service client's attempt is audited. */
export function authenticateAdmin(ctx: ServerContext) {
  return async (request: FastifyRequest): Promise<void> => {
    request.principal = await ctx.auth.authenticate(
      request.headers.authorization,
      request.raw.socket,
    );
    if (request.principal.kind !== 'admin') {
      recordAudit(ctx, request, {
        action: request.routeOptions.config.auditAction ?? 'admin.route',
        outcome: 'forbidden',
      });
      throw new ForbiddenError('This route needs the admin key.');
    }
  };
}

export type AuditFields = Pick<NewAuditEvent, 'action' | 'outcome'> &
  Partial<Pick<NewAuditEvent, 'connectionId' | 'owner' | 'provider'>> & {
    /** Small, non-secret details; stored as JSON. */
    detail?: Record<string, unknown>;
  };

export function recordAudit(
  ctx: ServerContext,
  request: FastifyRequest,
  fields: AuditFields,
): void {
  ctx.audit.record({
    at: Date.now(),
    requestId: request.id,
    actor: actorOf(request.principal),
    action: fields.action,
    connectionId: fields.connectionId ?? null,
    owner: fields.owner ?? null,
    provider: fields.provider ?? null,
    outcome: fields.outcome,
    detail: fields.detail ? JSON.stringify(fields.detail) : null,
  });
}

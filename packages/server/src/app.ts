// buildServer: the Fastify app over core, its plugins and routes, and its lifecycle (the
// scheduler, the audit writer, the shutdown grace). Just over 400 lines: the lifecycle's steps
// are kept beside the wiring they undo, in the order they run.
import { randomUUID } from 'node:crypto';
import type { Server as HttpServer, RequestListener } from 'node:http';
import { createServer as createHttpsServer, type ServerOptions as HttpsOptions } from 'node:https';
import {
  ConnectFlow,
  CredentialBroker,
  guardStore,
  providerFetch,
  type BrokerEvent,
  type CredentialBrokerOptions,
  type KeyRing,
  type KyselyStore,
  type RefreshScheduler,
  type RefreshSchedulerOptions,
} from '@tokenwarden/core';
import Fastify, {
  LogController,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  type FastifyServerOptions,
} from 'fastify';
import type { Logger, LoggerOptions } from 'pino';
import { AuditWriter, type AuditWriterOptions } from './audit/audit-writer.ts';
import { isApiKeyHash } from './auth/api-keys.ts';
import { storedAdminKeys } from './auth/admin-keys.ts';
import { Authenticator } from './auth/authenticator.ts';
import { actorOf } from './auth/principal.ts';
import { errorReply, ShuttingDownError } from './errors.ts';
import type { ServerContext } from './http/context.ts';
import { HandOutScopes } from './http/hand-out-scopes.ts';
import { documentErrorResponses } from './http/documented-errors.ts';
import { registerDocs } from './http/openapi.ts';
import { OwnerCache } from './http/owner-cache.ts';
import { frameworkErrorOptions, registerJsonParser } from './http/request-guards.ts';
import { lazyChildLoggerFactory } from './http/request-logger.ts';
import { registerRequestSpans, traceIdsMixin } from './tracing/http.ts';
import { ServerMetrics } from './metrics.ts';
import { auditRoutes } from './routes/audit.ts';
import { clientRoutes } from './routes/clients.ts';
import { connectRoutes } from './routes/connect.ts';
import { connectionProviderRoutes } from './routes/connection-provider.ts';
import { connectionRoutes } from './routes/connections.ts';
import { consoleRoutes } from './routes/console.ts';
import { healthRoutes } from './routes/health.ts';
import { providerRoutes } from './routes/providers.ts';
import { proxyRoutes, type ProxyOptions } from './routes/proxy.ts';
import { tokenRoutes } from './routes/tokens.ts';
import { webhookRoutes, type ServerWebhookOptions } from './routes/webhooks.ts';
import { refreshAuditEvent } from './audit/refresh-events.ts';

export interface BuildServerOptions {
  /** The database (SQLite or Postgres), migrated. The caller opened it and closes it. */
  store: KyselyStore;
  keyRing: KeyRing;
  /**
   * `hashApiKey(adminKey)`: SHA-256 hex of the admin key (the key itself is never needed); or
   * 'stored': the hash Tokenwarden keeps in the database, read at each admin request, so that
   * `tokenwarden admin-key rotate` counts at once (see auth/admin-keys.ts).
   */
  adminKeyHash: string | 'stored';
  /** Pino options, a pino logger, or false for none. Default: info level to stdout. */
  logger?: LoggerOptions | Logger | false;
  /** Largest request body in bytes. Default 64 KiB. */
  bodyLimit?: number;
  /** Extra broker options (fetch, leaseMs, maxWaitMs, ...). `onEvent` is called after the server's own. */
  broker?: Partial<Omit<CredentialBrokerOptions, 'store' | 'keyRing'>>;
  /** The proactive refresh scheduler: true (default), false, or its options. */
  scheduler?: boolean | RefreshSchedulerOptions;
  /** Serve Prometheus metrics at /metrics. Default true. */
  metrics?: boolean;
  /** Audit buffering. Defaults: flush every 10 ms or 500 events; at most 10,000 buffered. */
  audit?: Pick<AuditWriterOptions, 'flushIntervalMs' | 'batchSize' | 'maxBuffered'>;
  /** Serve the OpenAPI document at /docs/json and Swagger UI at /docs. Default true. */
  docs?: boolean;
  /**
   * The connect flow (`POST /v1/connect/sessions`, `GET /v1/connect/callback`). Off unless the
   * public URL of the callback is known: it is the redirect URI registered at every provider.
   */
  connect?: ConnectOptions;
  /**
   * How long `app.close()` lets requests in flight (and the scheduler's refreshes) run before it
   * aborts their provider requests and answers what is left `503`, retryable. Default 10 s.
   */
  shutdownGraceMs?: number;
  /** Serve HTTPS only, with these options (certificate, key, client CA). Default: plain HTTP. */
  https?: HttpsOptions;
  /** Proxy mode (`/v1/proxy/{id}/...`): the replay limit and the upstream timeouts. */
  proxy?: ProxyOptions;
  /** Webhook endpoints and delivery: private addresses allowed, timeouts, retries, ... */
  webhooks?: ServerWebhookOptions;
  /**
   * A span per request (`@fastify/otel`) and trace ids in log lines, once an OpenTelemetry SDK
   * is registered (`startTracing`). Default false: nothing of it is loaded.
   */
  tracing?: boolean;
}

/** What `app.close()` could not finish, for the operator (see `shutdownReport`). */
export interface ShutdownReport {
  /** Requests still unanswered when the grace period ended, answered 503 then. */
  answeredAtGrace: number;
  /** Audit events the store would not take; lost with this process. */
  auditUnwritten: number;
}

const reports = new WeakMap<FastifyInstance, ShutdownReport>();

/** After `app.close()`: what it could not finish. Undefined before. */
export function shutdownReport(app: FastifyInstance): ShutdownReport | undefined {
  return reports.get(app);
}

export interface ConnectOptions {
  /**
   * This server's callback as browsers reach it, e.g.
   * `https://tokenwarden.example/v1/connect/callback` (https, or http on loopback). A function is
   * called once, at the first connect request: for a URL known only after `listen()` (port 0).
   */
  callbackUrl: string | (() => string);
  /** How long a session waits for its callback. Default 10 minutes. */
  ttlMs?: number;
  /**
   * Origins a session's `redirect_uri` may point at (`https://app.example`). Default: any https
   * origin, or http on loopback.
   */
  redirectOrigins?: string[];
}

/** Request ids from a proxy are kept if they look like ids; anything else gets a fresh one. */
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * Builds the HTTP API over one store, ready to `listen()` (it does not listen itself). Stateless
 * apart from the database, so any number of replicas can share one Postgres.
 *
 * `app.close()` stops accepting, stops the scheduler claiming, lets in-flight requests and
 * refreshes finish for up to `shutdownGraceMs`, then aborts their provider requests (their
 * leases handed back, intents kept) and answers what is still unanswered `503`, retryable; it
 * writes the buffered audit events last (`shutdownReport` says what it could not). The store
 * stays open.
 */
export async function buildServer(options: BuildServerOptions): Promise<FastifyInstance> {
  if (options.adminKeyHash !== 'stored' && !isApiKeyHash(options.adminKeyHash)) {
    throw new TypeError(
      "adminKeyHash must be hashApiKey(adminKey): 64 lower-case hex digits, or 'stored'",
    );
  }
  const app = Fastify({
    ...loggerOptions(options.logger, options.tracing),
    bodyLimit: options.bodyLimit ?? 64 * 1024,
    // onResponse below writes one line per request instead of Fastify's two.
    logController: new LogController({ disableRequestLogging: true }),
    // A request's child logger is made only if it writes a line (request ids kept).
    childLoggerFactory: lazyChildLoggerFactory,
    requestIdHeader: false,
    genReqId: (req) => {
      const incoming = req.headers['x-request-id'];
      return typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID();
    },
    ajv: {
      // Unknown fields are an error, not silently dropped; a string is never taken for a number.
      customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false },
    },
    routerOptions: { maxParamLength: 200 },
    // Requests arriving while closing get our own 503 (below), in the API's error shape.
    return503OnClosing: false,
    // Bad URLs and what Node's parser refuses, in the API's error shape too.
    ...frameworkErrorOptions,
    // An HTTPS server built here, typed as the HTTP one every route is written against: Fastify
    // treats both alike, and `serve` reaches the TLS methods (setSecureContext) through it.
    ...(options.https && {
      serverFactory: (handler: RequestListener) =>
        createHttpsServer(options.https!, handler) as unknown as HttpServer,
    }),
  });
  registerJsonParser(app);
  documentErrorResponses(app);
  if (options.tracing) await registerRequestSpans(app);

  const handOuts = new HandOutScopes();
  // Guarded like the broker's own store: a database outage reaches every route and the
  // authenticator as `store_unavailable` (503, retryable), not as a driver error answered 500.
  const service = guardStore(options.store.service);
  const audit: AuditWriter = new AuditWriter(service, {
    ...options.audit,
    onProblem: ({ kind, count, error }) => {
      if (kind === 'dropped') metrics?.auditDropped.inc(count);
      app.log.error(
        { err: error, count },
        `audit events ${kind === 'dropped' ? 'dropped' : 'not written yet'}`,
      );
    },
  });
  const metrics: ServerMetrics | undefined =
    options.metrics === false
      ? undefined
      : new ServerMetrics({
          auditPending: () => audit.pending,
          breakerStates: () => broker.breakerStates(),
          exemplars: options.tracing,
        });
  const userOnEvent = options.broker?.onEvent;
  const userOnContention = options.broker?.onContention;
  const userFetch = options.broker?.fetch;
  // undici's request by default; it goes through undici's global dispatcher, so one installed
  // later (a proxy agent) is used.
  const baseFetch: typeof fetch = userFetch ?? providerFetch;
  const toProvider = metrics ? metrics.instrumentFetch(baseFetch) : baseFetch;
  const broker: CredentialBroker = new CredentialBroker({
    ...options.broker,
    store: options.store,
    keyRing: options.keyRing,
    providerStore: service,
    fetch: toProvider,
    onEvent: (event: BrokerEvent) => {
      metrics?.onBrokerEvent(event);
      audit.record(refreshAuditEvent(event, handOuts.scopeOf(event.connectionId)));
      userOnEvent?.(event);
    },
    onContention: (kind, connectionId) => {
      metrics?.onContention(kind);
      userOnContention?.(kind, connectionId);
    },
    onMeasure: (measure) => {
      metrics?.onMeasure(measure);
      options.broker?.onMeasure?.(measure);
    },
  });
  const ctx: ServerContext = {
    broker,
    store: options.store,
    service,
    auth: new Authenticator(
      service,
      options.adminKeyHash === 'stored' ? storedAdminKeys(service) : options.adminKeyHash,
    ),
    audit,
    metrics,
    handOuts,
    owners: new OwnerCache(),
    fetch: toProvider,
    connect: options.connect && connectSettings(options.connect, broker, options, toProvider),
  };

  app.decorateRequest('principal', null as never);
  app.setErrorHandler((error, request, reply) => {
    const answer = errorReply(error);
    if (answer.status >= 500 && answer.body.error !== 'shutting_down') {
      request.log.error({ err: error }, 'request failed');
    }
    return reply.code(answer.status).headers(answer.headers).send(answer.body);
  });
  app.setNotFoundHandler((_request, reply) =>
    reply.code(404).send({ error: 'not_found', message: 'No such route.' }),
  );
  // Node's server.close() ends only idle keep-alive connections: one busy at that moment would
  // linger until its keep-alive timeout, so answers given while closing close their connection,
  // and requests that still arrive are turned away before any work is done.
  let closing = false;
  // Every request not answered yet: at the end of the grace period each gets an answer.
  const unanswered = new Map<FastifyRequest, FastifyReply>();
  const graceMs = options.shutdownGraceMs ?? 10_000;
  let graceTimer: NodeJS.Timeout | undefined;
  let graceOver: Promise<void> | undefined;
  let schedulerStopped: Promise<void> | undefined;
  const report: ShutdownReport = { answeredAtGrace: 0, auditUnwritten: 0 };
  app.addHook('preClose', (done) => {
    closing = true;
    schedulerStopped = scheduler?.stop(); // claims nothing more; what runs may finish
    graceOver = new Promise((resolve) => {
      graceTimer = setTimeout(() => {
        void endGrace().then(resolve);
      }, graceMs);
    });
    done();
  });
  /** The grace period is over: abort what still runs, answer what is still waiting. */
  const endGrace = async () => {
    const brokerClosed = broker.close(); // provider requests aborted: their callers answer 503
    await Promise.race([brokerClosed, new Promise((resolve) => setTimeout(resolve, 1_000))]);
    // Left: requests stuck on something else (a store query that hangs).
    for (const reply of unanswered.values()) {
      if (reply.sent || reply.raw.headersSent) continue;
      report.answeredAtGrace += 1;
      answerShuttingDown(reply);
    }
    if (report.answeredAtGrace > 0) {
      app.log.warn(
        { count: report.answeredAtGrace },
        'answered 503 at the end of the grace period',
      );
    }
  };
  // Before any read made for a request (this hook is the first to run): see announceArrivals.
  const arrived = options.store.announceArrivals();
  // Hot-path hooks take a callback: an async hook costs a promise per request.
  app.addHook('onRequest', (request, reply, done) => {
    arrived();
    void reply.header('x-request-id', request.id);
    if (closing) return done(new ShuttingDownError());
    unanswered.set(request, reply);
    done();
  });
  app.addHook('onRequestAbort', (request, done) => {
    unanswered.delete(request);
    done();
  });
  app.addHook('onSend', (request, reply, payload, done) => {
    unanswered.delete(request);
    if (closing) void reply.header('connection', 'close');
    done(null, payload);
  });
  // One line per request, after the fact: no headers, no body, no query string. A route whose
  // every answered call is in the audit log (a hand-out) logs only what failed: its successes
  // would be the same fact twice, and the line was a fifth of a hand-out's CPU.
  app.addHook('onResponse', (request, reply, done) => {
    const route = request.routeOptions.url ?? 'unknown';
    metrics?.observeRequest(route, request.method, reply.statusCode, reply.elapsedTime / 1000);
    if (reply.statusCode < 400 && request.routeOptions.config.accessLog === 'failures') {
      return done();
    }
    request.log.info(
      {
        method: request.method,
        route,
        status: reply.statusCode,
        ms: Math.round(reply.elapsedTime * 100) / 100,
        actor: request.principal ? actorOf(request.principal) : undefined,
      },
      'request',
    );
    done();
  });

  if (options.docs !== false) await registerDocs(app);
  await app.register(healthRoutes, ctx);
  await app.register(providerRoutes, ctx);
  await app.register(connectionRoutes, ctx);
  await app.register(tokenRoutes, ctx);
  await app.register(connectionProviderRoutes, ctx);
  await app.register(connectRoutes, ctx);
  await app.register(clientRoutes, ctx);
  await app.register(auditRoutes, ctx);
  await app.register(proxyRoutes, { ...ctx, proxy: options.proxy });
  await app.register(webhookRoutes, {
    ...ctx,
    keyRing: options.keyRing,
    webhooks: options.webhooks,
  });
  await app.register(consoleRoutes, {
    ...ctx,
    keyRing: options.keyRing,
    webhooks: options.webhooks,
  });

  let scheduler: RefreshScheduler | undefined;
  if (options.scheduler !== false) {
    scheduler = broker.scheduler(typeof options.scheduler === 'object' ? options.scheduler : {});
    app.addHook('onReady', async () => scheduler!.start());
  }
  // Runs after the HTTP server has stopped and its in-flight requests are done. The scheduler's
  // refreshes may still run: they get what is left of the grace period.
  app.addHook('onClose', async () => {
    await Promise.race([schedulerStopped, graceOver]);
    clearTimeout(graceTimer);
    await broker.close();
    await schedulerStopped;
    report.auditUnwritten = await audit.close();
    reports.set(app, report);
  });
  return app;
}

/**
 * A request the grace period did not let finish: answered here, past Fastify (its handler may
 * still be running and would answer later), so the client gets a retryable 503, never a
 * dropped connection.
 */
function answerShuttingDown(reply: FastifyReply): void {
  const answer = errorReply(new ShuttingDownError());
  reply.hijack();
  reply.raw.writeHead(answer.status, {
    ...answer.headers,
    'content-type': 'application/json; charset=utf-8',
    'x-request-id': reply.request.id,
    connection: 'close',
  });
  reply.raw.end(JSON.stringify(answer.body));
}

/** The connect flow, made at its first use: its callback URL may be known only after listen. */
function connectSettings(
  connect: ConnectOptions,
  broker: CredentialBroker,
  options: BuildServerOptions,
  fetch: typeof globalThis.fetch,
): NonNullable<ServerContext['connect']> {
  const origins = connect.redirectOrigins && redirectOrigins(connect.redirectOrigins);
  const create = (callbackUri: string) =>
    new ConnectFlow({
      broker,
      store: options.store.connect,
      keyRing: options.keyRing,
      callbackUri,
      ttlMs: connect.ttlMs,
      fetch,
    });
  if (typeof connect.callbackUrl === 'string') {
    return { flow: create(connect.callbackUrl), redirectOrigins: origins };
  }
  const callbackUrl = connect.callbackUrl;
  let flow: ConnectFlow | undefined;
  return {
    get flow() {
      return (flow ??= create(callbackUrl()));
    },
    redirectOrigins: origins,
  };
}

/**
 * The allowed redirect origins, checked once at start-up. Throws a TypeError naming `label` for
 * anything that is not an origin (`scheme://host[:port]`, no path).
 */
export function redirectOrigins(
  origins: string[],
  label = 'connect.redirectOrigins',
): ReadonlySet<string> {
  return new Set(
    origins.map((origin) => {
      const url = URL.canParse(origin) ? new URL(origin) : undefined;
      if (!url || url.origin === 'null' || url.origin !== origin.replace(/\/$/, '')) {
        throw new TypeError(`${label}: "${origin}" is not an origin (scheme://host[:port])`);
      }
      return url.origin;
    }),
  );
}

function loggerOptions(
  logger: BuildServerOptions['logger'],
  tracing: boolean | undefined,
): Pick<FastifyServerOptions, 'logger' | 'loggerInstance'> {
  if (logger === false) return { logger: false };
  if (logger && typeof (logger as Logger).child === 'function') {
    return { loggerInstance: logger as Logger } as Pick<FastifyServerOptions, 'loggerInstance'>;
  }
  return {
    logger: {
      level: 'info',
      ...(logger as LoggerOptions | undefined),
      ...(tracing && { mixin: traceIdsMixin }),
      // Nothing should put these in a log line; if something ever does, they are masked.
      redact: {
        paths: [
          'req.headers.authorization',
          'headers.authorization',
          '*.access_token',
          '*.refresh_token',
          '*.client_secret',
          '*.api_key',
        ],
        censor: '[redacted]',
      },
    },
  };
}

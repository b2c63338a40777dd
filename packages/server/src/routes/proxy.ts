// Proxy mode: `ANY /v1/proxy/{id}/{path}` sends the request on to the connection's provider API
// with the connection's token added, and streams the answer back. The worker never holds the
// token; a 401 is a rejection report by version, as `/token/rejected` is (invariant 9).
import { Readable, Transform, pipeline } from 'node:stream';
import { UnknownProviderError, type AccessToken } from '@tokenwarden/core';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { actorOf, type GrantTarget } from '../auth/principal.ts';
import { errorCodeOf, InvalidRequestError } from '../errors.ts';
import { authenticate, type ServerContext } from '../http/context.ts';
import { closedObject, errorResponses, idString } from '../http/schemas.ts';
import { downstreamHeaders, upstreamHeaders } from '../proxy/headers.ts';
import { readRequestBody, type ProxyRequestBody } from '../proxy/request-body.ts';
import { refusesToken } from '../proxy/token-refused.ts';
import { UPSTREAM_HEADER, upstreamTarget, type UpstreamTarget } from '../proxy/target.ts';
import {
  Upstream,
  type UpstreamAnswer,
  type UpstreamCall,
  type UpstreamTimeouts,
} from '../proxy/upstream.ts';
import { auditFailure, authorizedConnection, requireGrant } from './connection-access.ts';
import { brokerToken } from './tokens.ts';

export interface ProxyOptions extends UpstreamTimeouts {
  /**
   * Request bodies up to this many bytes are held, so that a 401 can be answered by sending the
   * request again with a fresh token; larger ones stream through and a 401 is returned as it is
   * (the rejection still reported). Default 1 MiB.
   */
  replayLimitBytes?: number;
}

/** Set on every error Tokenwarden itself answers a proxied call with: not the upstream's answer. */
export const ERROR_HEADER = 'tokenwarden-error';

const PREFIX = '/v1/proxy/';
/** Audit rows stay small whatever path a caller sends. */
const MAX_AUDITED_PATH = 512;

/** A call under way: what its audit row and metrics say once it is answered. */
interface ProxiedCall {
  id: string;
  target: GrantTarget;
  method: string;
  upstream: UpstreamTarget;
  status: number;
  body: ProxyRequestBody;
  /** Set once the upstream answered (the answer that goes back). */
  answer: UpstreamAnswer | undefined;
  retried: boolean;
  /** Its audit row was recorded: once per call. */
  recorded: boolean;
}

export const proxyRoutes: FastifyPluginAsync<ServerContext & { proxy?: ProxyOptions }> = async (
  app,
  ctx,
) => {
  const upstream = new Upstream(ctx.proxy);
  const replayLimit = ctx.proxy?.replayLimitBytes ?? 1024 * 1024;
  app.addHook('onClose', () => upstream.close());

  // The body is the upstream's, read (or streamed) by the handler: no parser may consume it.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request, _payload, done) => done(null));
  // Tokenwarden's own refusals are marked, so a worker can tell them from the upstream's 4xx.
  app.setErrorHandler((error, _request, reply) => {
    // A streamed answer that failed before any of it went out: the upstream's headers (its
    // content-type, its length) are not those of this error.
    if (!reply.raw.headersSent) {
      for (const name of Object.keys(reply.getHeaders())) {
        if (name !== 'x-request-id') reply.removeHeader(name);
      }
    }
    void reply.header(ERROR_HEADER, errorCodeOf(error));
    throw error;
  });
  app.addHook('onRequest', authenticate(ctx));

  app.route<{ Params: { id: string } }>({
    // What OpenAPI can describe; TRACE would echo this hop's headers, the caller's key included.
    method: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'],
    url: `${PREFIX}:id/*`,
    schema: {
      tags: ['proxy'],
      summary: "Forward a request to the connection's provider API with its token added",
      description:
        "Needs the proxy action on the connection. Sent to the provider's first api_base_url " +
        `(or the one, or the origin, named by the \`${UPSTREAM_HEADER}\` header) plus the path ` +
        'and query after the connection id. Answered with the upstream status, headers and ' +
        'body as they are (redirects are not followed). A 401 from upstream (or what the ' +
        "provider's rejected_token_statuses and rejected_token_errors name) is reported as a " +
        'rejection of the token version used, and the request sent once more with the fresh ' +
        'token when its body was small enough to hold. The answer goes back once its audit ' +
        'row is stored (503 store_unavailable otherwise). Errors of Tokenwarden itself carry a ' +
        `\`${ERROR_HEADER}\` header with their code.`,
      params: closedObject(
        {
          id: idString,
          '*': { type: 'string', description: 'The path under the API base URL, and its query.' },
        },
        ['id'],
      ),
      response: errorResponses(400, 401, 403, 404, 409, 502, 503, 504),
    },
    config: { auditAction: 'proxy' },
    handler: (request, reply) => forward(ctx, upstream, replayLimit, request, reply),
  });
};

async function forward(
  ctx: ServerContext,
  upstream: Upstream,
  replayLimit: number,
  request: FastifyRequest<{ Params: { id: string } }>,
  reply: FastifyReply,
): Promise<FastifyReply> {
  const { id } = request.params;
  const actor = actorOf(request.principal);
  let target: GrantTarget | undefined;
  let call: ProxiedCall;
  let answer: UpstreamAnswer;
  try {
    target = ctx.owners.get(id) ?? (await authorizedConnection(ctx, request, id, 'proxy'));
    requireGrant(request, 'proxy', id, target);
    const provider = await ctx.broker.providers.get(target.provider);
    if (!provider) throw new UnknownProviderError(target.provider);
    const { tail, query } = proxiedPart(request.raw.url ?? '', id);
    const destination = upstreamTarget(
      provider.apiBaseUrls,
      tail,
      query,
      singleHeader(request.headers[UPSTREAM_HEADER]),
    );
    const body = await readRequestBody(request.raw, replayLimit);
    let pending: UpstreamCall | undefined;
    const send = (token: AccessToken) => {
      pending = upstream.send({
        origin: destination.origin,
        path: destination.path,
        method: request.method,
        headers: upstreamHeaders(request.headers, `${token.tokenType} ${token.accessToken}`),
        body: body.source,
        peekJson: provider.rejectedTokenErrors.length > 0,
      });
      return pending.answer;
    };
    call = {
      id,
      target,
      method: request.method,
      upstream: destination,
      status: 0,
      body,
      answer: undefined,
      retried: false,
      recorded: false,
    };
    const started = call;
    // 'close' comes after the last byte, or when the answer broke off (then neither 'finish' nor
    // Fastify's onResponse comes): the one moment every call is over.
    reply.raw.once('close', () => {
      // The caller went away: whatever is still under way upstream is of no use to anyone.
      if (!reply.raw.writableFinished) pending?.abort();
      if (started.answer) void recordCall(ctx, request, started, reply.elapsedTime);
    });

    const token = await brokerToken(ctx, request.id, actor, id, {});
    answer = await send(token);
    if (refusesToken(answer, provider)) {
      ctx.metrics?.proxyRetries.inc({
        provider: target.provider,
        retried: String(body.replayable),
      });
      if (body.replayable) {
        if (!Buffer.isBuffer(answer.body)) answer.body.destroy();
        answer = await send(
          await brokerToken(ctx, request.id, actor, id, { rejectedVersion: token.version }),
        );
        call.retried = true;
      } else {
        // Too large to send twice: the refusal goes back as it is, but the next call gets a
        // fresh token.
        brokerToken(ctx, request.id, actor, id, { rejectedVersion: token.version }).catch(
          () => undefined,
        );
      }
    }
    call.status = answer.statusCode;
    call.answer = answer;
  } catch (error) {
    auditFailure(ctx, request, 'proxy', id, error, target);
    ctx.metrics?.countProxied(target?.provider ?? 'unknown', errorCodeOf(error), 0, {
      upstream: 0,
      downstream: 0,
    });
    throw error;
  }
  const answered = call;
  if (Buffer.isBuffer(answer.body)) {
    // Fail closed, as a hand-out does: the answer goes back once its audit row is stored.
    await recordCall(ctx, request, answered, reply.elapsedTime, true);
    void reply.code(answer.statusCode).headers(downstreamHeaders(answer.headers));
    // Held, but sent without a length by the upstream: no length is made up.
    return reply.send(answer.chunked ? Readable.from([answer.body]) : answer.body);
  }
  void reply.code(answer.statusCode).headers(downstreamHeaders(answer.headers));
  // Streamed: its last piece goes once the call's audit row is stored.
  const held = lastPieceHeld(() => recordCall(ctx, request, answered, reply.elapsedTime, true));
  pipeline(answer.body, held, () => undefined);
  return reply.send(held);
}

/**
 * The upstream path (still percent-encoded as sent) and query of a proxied request's raw URL:
 * what follows `/v1/proxy/{id}/`. Read from the raw URL rather than Fastify's decoded wildcard,
 * so that what is checked is what is sent.
 */
function proxiedPart(url: string, id: string): { tail: string; query: string } {
  const at = url.indexOf('?');
  const path = at === -1 ? url : url.slice(0, at);
  const prefix = `${PREFIX}${id}/`;
  // Anything else is a request target in absolute form or an id spelled with escapes: the
  // route matched, but the upstream path cannot be told apart with certainty.
  if (!path.startsWith(prefix)) {
    throw new InvalidRequestError(`Send proxied requests as ${PREFIX}{connection id}/{path}.`);
  }
  return { tail: path.slice(prefix.length), query: at === -1 ? '' : url.slice(at + 1) };
}

function singleHeader(value: string | string[] | undefined): string | undefined {
  if (Array.isArray(value)) {
    throw new InvalidRequestError(`Send at most one ${UPSTREAM_HEADER} header.`);
  }
  return value;
}

/**
 * The call's one audit row (no query string, no header) and its metrics, the first time it is
 * asked for. It goes the hand-outs' way (`recordDurably`: batched with the events of the same
 * turn, never dropped unseen); with `refuse` a row that cannot be stored in time rejects with
 * StoreUnavailableError, and the answer must not go back. Without it (the caller went away) the
 * failure is only logged: nothing is left to refuse.
 */
function recordCall(
  ctx: ServerContext,
  request: FastifyRequest,
  call: ProxiedCall,
  elapsedMs: number,
  refuse = false,
): Promise<void> {
  if (call.recorded) return Promise.resolve();
  call.recorded = true;
  const bytesUp = call.body.sent();
  const bytesDown = call.answer?.received() ?? 0;
  const failure = call.answer?.failure();
  const path = call.upstream.pathname;
  const written = ctx.audit.recordDurably({
    at: Date.now(),
    requestId: request.id,
    actor: actorOf(request.principal),
    action: 'proxy',
    connectionId: call.id,
    owner: call.target.owner,
    provider: call.target.provider,
    outcome: failure === undefined ? 'ok' : errorCodeOf(failure),
    // The strings are JSON-quoted, the rest are numbers and booleans: no JSON.stringify of an
    // object per call.
    detail:
      `{"method":"${call.method}","upstream":${JSON.stringify(call.upstream.origin)},` +
      `"path":${JSON.stringify(path.length > MAX_AUDITED_PATH ? path.slice(0, MAX_AUDITED_PATH) : path)},` +
      `"status":${call.status},"bytes_up":${bytesUp},"bytes_down":${bytesDown},` +
      `"ms":${Math.round(elapsedMs * 100) / 100},"retried":${call.retried}}`,
  });
  ctx.metrics?.countProxied(call.target.provider, String(call.status), elapsedMs / 1000, {
    upstream: bytesUp,
    downstream: bytesDown,
  });
  if (refuse) return written;
  return written.catch((error: unknown) => {
    request.log.warn(
      { code: errorCodeOf(error) },
      'proxy: the audit row of a finished call was not stored in time',
    );
  });
}

/**
 * Passes a streamed answer through, holding back its last piece until `beforeEnd` resolves: a
 * caller has the whole answer only once its audit row is stored, and otherwise sees it break off.
 */
function lastPieceHeld(beforeEnd: () => Promise<void>): Transform {
  let last: Buffer | undefined;
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      const previous = last;
      last = chunk;
      done(null, previous);
    },
    flush(done) {
      beforeEnd().then(
        () => done(null, last),
        (error: unknown) => done(error as Error),
      );
    },
  });
}

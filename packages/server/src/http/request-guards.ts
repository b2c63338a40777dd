import type { Socket } from 'node:net';
import { TokenwardenError, type ErrorCode } from '@tokenwarden/core';
import type { FastifyInstance, FastifyReply, FastifyServerOptions } from 'fastify';
import { errorReply, InvalidRequestError } from '../errors.ts';

/**
 * What reaches the server before any route: URLs that do not decode, path parameters over the
 * router's limit, requests Node's HTTP parser refuses (headers too large, garbage), bodies.
 * Each is answered in the API's `{error, message}` shape, and never with the path echoed: a path
 * may carry what a caller pasted by mistake.
 */
export const frameworkErrorOptions = {
  frameworkErrors(error, _request, reply) {
    const answer = errorReply(
      error.code === 'FST_ERR_MAX_PARAM_LENGTH'
        ? new TokenwardenError('uri_too_long')
        : error.code === 'FST_ERR_BAD_URL'
          ? new InvalidRequestError('The URL path is not validly percent-encoded UTF-8.')
          : error,
    );
    void (reply as FastifyReply).code(answer.status).headers(answer.headers).send(answer.body);
  },
  clientErrorHandler(error: NodeJS.ErrnoException, socket: Socket) {
    // A reset connection has no one left to answer.
    if (error.code === 'ECONNRESET' || socket.destroyed) return;
    const code: ErrorCode =
      error.code === 'HPE_HEADER_OVERFLOW'
        ? 'headers_too_large'
        : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? 'request_timeout'
          : 'invalid_request';
    const { status, body } = errorReply(new TokenwardenError(code));
    const json = JSON.stringify(body);
    if (socket.writable) {
      socket.write(
        `HTTP/1.1 ${status} ${code}\r\ncontent-type: application/json; charset=utf-8\r\n` +
          `content-length: ${Buffer.byteLength(json)}\r\nconnection: close\r\n\r\n${json}`,
      );
    }
    socket.destroy(error);
  },
} satisfies Pick<FastifyServerOptions, 'frameworkErrors' | 'clientErrorHandler'>;

/** In `u` mode a surrogate pair is one code point: only an unpaired half matches. */
const LONE_SURROGATE = /\p{Surrogate}/u;

/**
 * The JSON body parser: Fastify's own (prototype poisoning refused), plus two rules. An empty
 * body with `content-type: application/json` is no body, as the docs promise for the routes
 * whose body may be omitted (a route that needs one still refuses it). A string or key holding
 * a lone surrogate (`"\ud800"`) is refused: it has no UTF-8 form, so it would be stored as other
 * bytes and never found again.
 */
export function registerJsonParser(app: FastifyInstance): void {
  const parse = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, text, done) => {
    if (text === '') return done(null, undefined);
    void parse(request, text as string, (error, body) => {
      if (error) return done(error);
      const where = loneSurrogateAt(body, 'body');
      if (where === undefined) return done(null, body);
      done(new InvalidRequestError(`${where}: must be valid UTF-16 (it holds a lone surrogate)`));
    });
  });
}

/** Where in a parsed JSON value a lone surrogate is, as a path (`body.owner`), or undefined. */
function loneSurrogateAt(value: unknown, path: string): string | undefined {
  if (typeof value === 'string') return LONE_SURROGATE.test(value) ? path : undefined;
  if (typeof value !== 'object' || value === null) return undefined;
  for (const [key, item] of Object.entries(value)) {
    // The key itself may be what is broken: never quote it.
    if (LONE_SURROGATE.test(key)) return `${path} (a field name)`;
    const found = loneSurrogateAt(
      item,
      Array.isArray(value) ? `${path}[${key}]` : `${path}.${key.slice(0, 64)}`,
    );
    if (found !== undefined) return found;
  }
  return undefined;
}

import {
  ERROR_CODES,
  NeedsReauthError,
  RefreshUnavailableError,
  TokenwardenError,
  type ErrorCode,
} from '@tokenwarden/core';

/**
 * The HTTP API's errors: codes from core's one registry (`ERROR_CODES`), answered as
 * `{"error": code, "message": ...}` with the registry's status. See docs/errors.md.
 */

/** The request is malformed: bad JSON, wrong types, unknown fields, bad ids or values. */
export class InvalidRequestError extends TokenwardenError {
  constructor(message: string = ERROR_CODES.invalid_request.message) {
    super('invalid_request', message);
    this.name = 'InvalidRequestError';
  }
}

/** No API key, an unknown one, or one that was revoked. */
export class UnauthorizedError extends TokenwardenError {
  constructor(message: string = ERROR_CODES.unauthorized.message) {
    super('unauthorized', message);
    this.name = 'UnauthorizedError';
  }
}

/** A valid key without the grant (or admin rights) this request needs. */
export class ForbiddenError extends TokenwardenError {
  constructor(message: string = ERROR_CODES.forbidden.message) {
    super('forbidden', message);
    this.name = 'ForbiddenError';
  }
}

/** The server is closing: the request was turned away untouched, another replica can take it. */
export class ShuttingDownError extends TokenwardenError {
  constructor() {
    super('shutting_down');
    this.name = 'ShuttingDownError';
  }
}

/** A proxied call for a connection whose provider has no `api_base_urls`: nothing was sent. */
export class ProxyNotConfiguredError extends TokenwardenError {
  constructor() {
    super('proxy_not_configured');
    this.name = 'ProxyNotConfiguredError';
  }
}

/**
 * The provider's API could not be reached or broke off (a refused connection, an unknown host, a
 * reset). `why` is a code (`ECONNREFUSED`), never a URL with its query or a header.
 */
export class UpstreamUnreachableError extends TokenwardenError {
  constructor(why: string, options?: ErrorOptions) {
    super('upstream_unreachable', `The provider's API could not be reached (${why}).`, options);
    this.name = 'UpstreamUnreachableError';
  }
}

/** The provider's API did not connect, answer or send its body within the proxy's timeouts. */
export class UpstreamTimeoutError extends TokenwardenError {
  constructor(phase: 'connect' | 'headers' | 'body', timeoutMs: number, options?: ErrorOptions) {
    super(
      'upstream_timeout',
      `The provider's API did not ${phase === 'connect' ? 'accept the connection' : phase === 'headers' ? 'answer' : 'send more of its body'} within ${timeoutMs} ms.`,
      options,
    );
    this.name = 'UpstreamTimeoutError';
  }
}

export interface ErrorBody {
  error: ErrorCode;
  message: string;
  reason?: string;
  retry_after?: number;
}

export interface ErrorReply {
  status: number;
  body: ErrorBody;
  headers: Record<string, string>;
}

/** What Fastify's own errors carry that matters here. */
interface FastifyLikeError {
  code?: string;
  statusCode?: number;
  validation?: { keyword?: string; instancePath?: string; params?: Record<string, unknown> }[];
  validationContext?: string;
  message?: string;
}

/** Fixed texts for Fastify's body errors: its own messages may quote the body, tokens included. */
const FASTIFY_BODY_ERRORS: Record<string, string> = {
  FST_ERR_CTP_INVALID_JSON_BODY: 'The body is not valid JSON.',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'The body is empty; send a JSON object.',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'Send the body as application/json.',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'The Content-Length does not match the body.',
  FST_ERR_CTP_BODY_TOO_LARGE: ERROR_CODES.payload_too_large.message,
};

/**
 * Maps anything thrown while handling a request to the reply. Core's `invalid_input` becomes
 * `invalid_request` (one code for "fix your request"); server-side failures answer the registry's
 * generic message, the detail stays in the log.
 */
export function errorReply(error: unknown): ErrorReply {
  if (error instanceof TokenwardenError) return tokenwardenReply(error);
  const e = (error ?? {}) as FastifyLikeError;
  if (e.validation) return reply('invalid_request', validationMessage(e));
  if (e.statusCode === 413) return reply('payload_too_large');
  if (e.code && e.code in FASTIFY_BODY_ERRORS) {
    return reply('invalid_request', FASTIFY_BODY_ERRORS[e.code]);
  }
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    if (e.statusCode === 404) return reply('not_found', 'No such route.');
    return reply('invalid_request');
  }
  return reply('internal_error');
}

function tokenwardenReply(error: TokenwardenError): ErrorReply {
  if (error.code === 'invalid_input') return reply('invalid_request', error.message);
  if (error instanceof NeedsReauthError) {
    const answer = reply('needs_reauth', error.message);
    answer.body.reason = error.reason;
    return answer;
  }
  if (error instanceof RefreshUnavailableError) {
    const seconds = Math.max(1, Math.ceil(error.retryAfterMs / 1000));
    const answer = reply('refresh_unavailable', error.message);
    answer.body.retry_after = seconds;
    answer.headers['retry-after'] = String(seconds);
    return answer;
  }
  // 5xx detail (which key is missing, what the driver said) is for the operator's log; the
  // proxy's upstream errors are about someone else's server and say which phase failed.
  if (
    error.status >= 500 &&
    !(error instanceof UpstreamUnreachableError || error instanceof UpstreamTimeoutError)
  ) {
    const answer = reply(error.code);
    if (error.code === 'shutting_down' || error.code === 'store_unavailable') {
      answer.headers['retry-after'] = '1';
    }
    return answer;
  }
  const answer = reply(error.code, error.message);
  if (error.code === 'unauthorized') answer.headers['www-authenticate'] = 'Bearer';
  return answer;
}

function reply(code: ErrorCode, message: string = ERROR_CODES[code].message): ErrorReply {
  return { status: ERROR_CODES[code].status, body: { error: code, message }, headers: {} };
}

/** Ajv's first complaint, naming the field. Ajv never quotes the offending value. */
function validationMessage(error: FastifyLikeError): string {
  const first = error.validation?.[0];
  const unknown = first?.params?.additionalProperty;
  if (first?.keyword === 'additionalProperties' && typeof unknown === 'string') {
    return `${error.validationContext ?? 'body'} has an unknown field "${unknown.slice(0, 64)}"`;
  }
  // The schema's own values, never the caller's: say which exist (presets, grant actions).
  const allowed = first?.params?.allowedValues;
  if (first?.keyword === 'enum' && Array.isArray(allowed)) {
    const values = allowed.filter((value) => value !== null).join(', ');
    const field = `${error.validationContext ?? 'body'}${first.instancePath ?? ''}`;
    return `${field} must be one of ${values}`.slice(0, 600);
  }
  return (error.message ?? ERROR_CODES.invalid_request.message).slice(0, 300);
}

/** The stable code an error is answered with; the audit log records it as the outcome. */
export function errorCodeOf(error: unknown): ErrorCode {
  return errorReply(error).body.error;
}

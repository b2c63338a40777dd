// Turns an API answer that is not 2xx into the typed error the SDK throws.
import {
  ForbiddenError,
  InvalidRequestError,
  NeedsReauthError,
  NotFoundError,
  RefreshUnavailableError,
  TokenwardenError,
  UnauthorizedError,
  type TokenwardenErrorDetails,
} from '../errors.ts';

/** Used when a 503 names no Retry-After: the server knows best, but said nothing. */
const DEFAULT_RETRY_AFTER_MS = 1_000;
/** The server's messages are safe, but a proxy's error page could be anything: keep it short. */
const MAX_MESSAGE_LENGTH = 300;

interface ErrorBody {
  error: string;
  message?: unknown;
  reason?: unknown;
}

function errorBody(text: string): ErrorBody | undefined {
  try {
    const body: unknown = JSON.parse(text);
    if (typeof body === 'object' && body !== null && typeof (body as ErrorBody).error === 'string')
      return body as ErrorBody;
  } catch {
    // not JSON: not an answer from the Tokenwarden API itself
  }
  return undefined;
}

export function errorFromResponse(
  status: number,
  text: string,
  retryAfterMs: number | undefined,
  connectionId: string | undefined,
): TokenwardenError {
  const details: TokenwardenErrorDetails = { status, connectionId };
  const body = errorBody(text);
  if (body === undefined) {
    // A load balancer's 502 or a wrong baseUrl's 404: not something the API said.
    return new TokenwardenError(
      'unexpected_response',
      `HTTP ${status} without a Tokenwarden error body (is baseUrl right, is a proxy in the way?)`,
      details,
    );
  }
  const code = body.error;
  const message =
    typeof body.message === 'string' && body.message !== ''
      ? body.message.slice(0, MAX_MESSAGE_LENGTH)
      : `Tokenwarden answered ${code} (HTTP ${status})`;
  switch (code) {
    case 'needs_reauth':
      return new NeedsReauthError(
        message,
        typeof body.reason === 'string' ? body.reason : 'unknown',
        details,
      );
    case 'refresh_unavailable':
      return new RefreshUnavailableError(message, retryAfterMs ?? DEFAULT_RETRY_AFTER_MS, details);
    case 'not_found':
      return new NotFoundError(message, details);
    case 'forbidden':
      return new ForbiddenError(message, details);
    case 'unauthorized':
      return new UnauthorizedError(message, details);
    case 'invalid_request':
    case 'invalid_input':
    case 'payload_too_large':
      return new InvalidRequestError(message, { ...details, code });
    default:
      return new TokenwardenError(code, message, details);
  }
}

// How the test provider words its answers: the refusal styles and token response formats of
// real providers, selected by options.
import type { Answer } from './http.ts';
import type { RefusalReason } from './state.ts';
import type { ResolvedProviderOptions } from './types.ts';

const DESCRIPTIONS: Record<RefusalReason, string> = {
  unknown: 'Unknown refresh token.',
  revoked: 'Token has been revoked.',
  expired: 'Refresh token has expired.',
  reused: 'Refresh token has already been used.',
};

/** "This refresh token is dead", in the configured provider's words. */
export function refusal(options: ResolvedProviderOptions, reason: RefusalReason): Answer {
  const description = options.refusalMessage ?? DESCRIPTIONS[reason];
  switch (options.errorStyle) {
    case 'slack':
      return { status: 200, body: { ok: false, error: 'invalid_refresh_token' } };
    case 'github':
      return {
        status: 200,
        body: {
          error: 'bad_refresh_token',
          error_description: 'The refresh token passed is incorrect or expired.',
        },
      };
    case 'hubspot':
      return {
        status: 400,
        body: { status: 'BAD_REFRESH_TOKEN', message: 'missing or unknown refresh token' },
      };
    case 'zoom':
      return { status: 400, body: { reason: 'Invalid Token!', error: 'invalid_request' } };
    case 'oauth403':
      return { status: 403, body: { error: 'invalid_grant', error_description: description } };
    default:
      return { status: 400, body: { error: 'invalid_grant', error_description: description } };
  }
}

/**
 * A successful token response in the configured format: expires_in as a number, a string, left
 * out, or left out with Salesforce's issued_at; JSON, or form-encoded for a client that did not
 * ask for JSON (GitHub).
 */
export function tokenAnswer(
  options: ResolvedProviderOptions,
  body: Record<string, unknown>,
  accept: string | undefined,
  now: number,
): Answer {
  const out = { ...body };
  switch (options.expiresInFormat) {
    case 'string':
      out.expires_in = String(out.expires_in);
      break;
    case 'omit':
      delete out.expires_in;
      break;
    case 'issued_at':
      delete out.expires_in;
      out.issued_at = String(now);
      break;
  }
  if (options.errorStyle === 'slack') out.ok = true;
  return shaped(options, { status: 200, body: out }, accept);
}

/** GitHub answers form-encoded (errors included) unless the client asks for JSON. */
export function shaped(
  options: ResolvedProviderOptions,
  answer: Answer,
  accept: string | undefined,
): Answer {
  if (
    options.responseFormat === 'form' ||
    (options.responseFormat === 'form-unless-json-accepted' &&
      !/\bapplication\/json\b/i.test(accept ?? ''))
  ) {
    return { ...answer, encoding: 'form' };
  }
  return answer;
}

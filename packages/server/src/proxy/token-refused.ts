// What says that the provider's API refused the access token a proxied call carried: then the
// token's version is reported rejected (invariant 9) and the call sent once more.
import type { ResolvedProvider } from '@tokenwarden/core';
import { isJson } from './headers.ts';
import type { UpstreamAnswer } from './upstream.ts';

/**
 * The upstream refused the token: a 401, or any answer whose `WWW-Authenticate` says
 * `error="invalid_token"` (RFC 6750 §3.1; some APIs send it with a 403), or what the provider's
 * settings say its API answers instead: a status (`rejected_token_statuses`), or a held JSON
 * answer whose top-level `error` is one of `rejected_token_errors` (Slack answers 200 with
 * `{"ok":false,"error":"invalid_auth"}`).
 */
export function refusesToken(answer: UpstreamAnswer, provider: ResolvedProvider): boolean {
  const status = answer.statusCode;
  if (status === 401 || provider.rejectedTokenStatuses.includes(status)) return true;
  const challenge = answer.headers['www-authenticate'];
  if (
    challenge !== undefined &&
    /\berror\s*=\s*"?invalid_token\b/i.test(
      Array.isArray(challenge) ? challenge.join(',') : challenge,
    )
  ) {
    return true;
  }
  const codes = provider.rejectedTokenErrors;
  if (codes.length === 0 || !Buffer.isBuffer(answer.body) || !isJson(answer.headers)) return false;
  // Most answers carry no error at all: they are not parsed.
  if (answer.body.indexOf('"error"') === -1) return false;
  const error = jsonErrorCode(answer.body);
  return error !== undefined && codes.includes(error);
}

/** The top-level `error` of a JSON object, when it is a string. */
function jsonErrorCode(body: Buffer): string | undefined {
  try {
    const value: unknown = JSON.parse(body.toString('utf8'));
    const error = (value as { error?: unknown } | null)?.error;
    return typeof error === 'string' ? error : undefined;
  } catch {
    return undefined;
  }
}

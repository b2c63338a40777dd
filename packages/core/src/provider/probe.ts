// Does a provider's configuration work, before any connection depends on it? A refresh token
// grant with a refresh token nobody ever issued cannot redeem anything, yet its answer says
// whether the token endpoint is there and whether it accepts this client's credentials: RFC 6749
// §5.2 has the server authenticate the client before it looks at the grant.
import { randomBytes } from 'node:crypto';
import { InvalidInputError } from '../errors.ts';
import { refreshTokenGrant } from '../oauth/refresh-token-grant.ts';
import type { GrantOptions } from '../oauth/token-endpoint.ts';
import type { ResolvedProvider } from './settings.ts';

/**
 * What the probe learnt: `accepted` (the endpoint answered and took the client's credentials),
 * `client_rejected` (it answered and refused them), `unreachable` (no answer, a 5xx or a 429),
 * `unexpected` (an answer that says neither, such as `unsupported_grant_type`).
 */
export const PROBE_VERDICTS = ['accepted', 'client_rejected', 'unreachable', 'unexpected'] as const;
export type ProbeVerdict = (typeof PROBE_VERDICTS)[number];

export interface ProbeResult {
  verdict: ProbeVerdict;
  /** The provider's error code, or what went wrong on the way (`network_error`, `timeout`). */
  code: string;
  /** The verdict in plain words, for people; never a secret or the provider's own prose. */
  message: string;
}

/** Codes that say "these client credentials are wrong" (RFC 6749 §5.2); 401 is read as the first. */
const CLIENT_REFUSALS = new Set(['invalid_client', 'unauthorized_client']);
const NO_ANSWER = new Set(['network_error', 'timeout', 'server_error', 'rate_limited']);

/**
 * Sends a refresh token grant with a random, never-issued refresh token to `provider`'s token
 * endpoint and reads the answer as a verdict on the configuration. Redeems nothing; never throws
 * for provider behaviour. Throws InvalidInputError (field `client_secret`) when there is no client
 * secret to authenticate with: nothing is sent then.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-5.2
 */
export async function probeTokenEndpoint(
  provider: ResolvedProvider,
  options: GrantOptions = {},
): Promise<ProbeResult> {
  if (provider.clientSecret === undefined) {
    throw new InvalidInputError(
      'client_secret',
      'is not set, so the token endpoint cannot authenticate this client; nothing was sent',
    );
  }
  const bogus = `tokenwarden-probe-${randomBytes(24).toString('base64url')}`;
  const outcome = await refreshTokenGrant(provider, bogus, options);
  const endpoint = new URL(provider.tokenUrl).origin;
  if (outcome.kind === 'refused') {
    return {
      verdict: 'accepted',
      code: outcome.error,
      message: `${endpoint} is reachable and accepts client ${provider.clientId}: it refused a made-up refresh token with ${outcome.error}, as it should.`,
    };
  }
  if (outcome.kind === 'tokens') {
    return {
      verdict: 'unexpected',
      code: 'tokens_issued',
      message: `${endpoint} issued tokens for a made-up refresh token: it does not check refresh tokens, or this is not its token endpoint.`,
    };
  }
  if (CLIENT_REFUSALS.has(outcome.error)) {
    return {
      verdict: 'client_rejected',
      code: outcome.error,
      message: `${endpoint} is reachable but rejected client ${provider.clientId} (${outcome.error}): check client_id, client_secret and client_auth.`,
    };
  }
  if (NO_ANSWER.has(outcome.error)) {
    return {
      verdict: 'unreachable',
      code: outcome.error,
      message: `${endpoint} did not answer the token request (${describeFailure(outcome.error)}): check token_url and that the provider is up.`,
    };
  }
  return {
    verdict: 'unexpected',
    code: outcome.error,
    message: `${endpoint} answered ${spoken(outcome.error)}, which says neither that the client is accepted nor that it is refused: check token_url and grant_type.`,
  };
}

/** `http_404` as HTTP 404; an OAuth error code as it is. */
function spoken(code: string): string {
  return code.startsWith('http_') ? `HTTP ${code.slice(5)}` : code;
}

function describeFailure(code: string): string {
  switch (code) {
    case 'timeout':
      return 'no answer within request_timeout_ms';
    case 'server_error':
      return 'a 5xx server error';
    case 'rate_limited':
      return '429, rate limited: try again later';
    default:
      return 'the connection failed';
  }
}

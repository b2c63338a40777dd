// POST /token once the request is read: client authentication, then the grant — refresh_token
// (RFC 6749 §6), authorization_code with PKCE (§4.1.3, RFC 7636) or client_credentials (§4.4) —
// answered in the configured provider's style.
import type { IncomingMessage } from 'node:http';
import type { AuthorizationCodes } from './authorize.ts';
import { authenticateClient, oauthError, type Answer } from './http.ts';
import { refusal, shaped, tokenAnswer } from './quirks.ts';
import type { ProviderState } from './state.ts';
import type { ResolvedProviderOptions } from './types.ts';

export interface GrantContext {
  options: ResolvedProviderOptions;
  state: ProviderState;
  codes: AuthorizationCodes;
  now: number;
}

const SINGLE_PARAMS = [
  'grant_type',
  'refresh_token',
  'client_id',
  'client_secret',
  'scope',
  'code',
  'code_verifier',
  'redirect_uri',
];

export function grant(
  ctx: GrantContext,
  req: IncomingMessage,
  form: URLSearchParams | null,
  keepOld: boolean,
): Answer {
  const { options } = ctx;
  if (form === null) {
    const expected =
      options.requestFormat === 'json'
        ? 'application/json'
        : options.requestFormat === 'any'
          ? 'application/x-www-form-urlencoded or application/json'
          : 'application/x-www-form-urlencoded';
    return oauthError(400, 'invalid_request', `expected ${expected}`);
  }
  const refused = authenticateClient(req.headers.authorization, form, options);
  if (refused) return refused;
  // RFC 6749 §3.2: request parameters must not be included more than once.
  for (const name of SINGLE_PARAMS) {
    if (form.getAll(name).length > 1) return oauthError(400, 'invalid_request', `repeated ${name}`);
  }
  const accept = req.headers.accept;
  switch (form.get('grant_type')) {
    case null:
    case '':
      return oauthError(400, 'invalid_request', 'missing grant_type');
    case 'refresh_token':
      return refreshTokenGrant(ctx, form, keepOld, accept);
    case 'client_credentials': {
      const issued = ctx.state.clientCredentials(options, form.get('scope') ?? undefined, ctx.now);
      const body: Record<string, unknown> = {
        access_token: issued.accessToken,
        token_type: 'Bearer',
        expires_in: issued.expiresIn,
      };
      if (issued.scope !== undefined) body.scope = issued.scope;
      return tokenAnswer(options, body, accept, ctx.now);
    }
    case 'authorization_code':
      return authorizationCodeGrant(ctx, form, accept);
    default:
      return oauthError(400, 'unsupported_grant_type');
  }
}

function refreshTokenGrant(
  ctx: GrantContext,
  form: URLSearchParams,
  keepOld: boolean,
  accept: string | undefined,
): Answer {
  const { options, state } = ctx;
  const refreshToken = form.get('refresh_token');
  if (!refreshToken) return oauthError(400, 'invalid_request', 'missing refresh_token');
  const result = state.redeem(refreshToken, options, ctx.now, keepOld);
  if (!result.ok) {
    state.stats.invalidGrants++;
    return shaped(options, refusal(options, result.reason), accept);
  }
  const ok: Record<string, unknown> = {
    access_token: result.accessToken,
    token_type: state.tokenTypeOf(result.family),
    expires_in: result.expiresIn,
  };
  if (result.refreshToken !== undefined) ok.refresh_token = result.refreshToken;
  if (result.scope !== undefined) ok.scope = result.scope;
  if (result.refreshExpiresIn !== undefined) ok.refresh_token_expires_in = result.refreshExpiresIn;
  return tokenAnswer(options, ok, accept, ctx.now);
}

function authorizationCodeGrant(
  ctx: GrantContext,
  form: URLSearchParams,
  accept: string | undefined,
): Answer {
  const { options, state } = ctx;
  const checked = ctx.codes.check(form, ctx.now);
  if (!checked.ok) {
    // RFC 6749 §4.1.2: a code used twice should revoke the tokens it was exchanged for.
    if (checked.reusedFamily !== undefined) state.revokeFamily(checked.reusedFamily);
    state.stats.invalidGrants++;
    return shaped(options, checked.answer, accept);
  }
  state.stats.codeExchanges++;
  const scope = checked.scope;
  if (options.personality === 'slack') {
    // Slack's install answer: the bot's pair at the top level, the user's under authed_user.
    const bot = state.issueGrant(options, { scope }, ctx.now, 'bot');
    const user = state.issueGrant(options, { scope }, ctx.now, 'user');
    checked.settle(bot.family);
    return tokenAnswer(
      options,
      {
        access_token: bot.access_token,
        token_type: 'bot',
        refresh_token: bot.refresh_token,
        expires_in: bot.expires_in,
        scope,
        authed_user: {
          id: 'U0TEST',
          access_token: user.access_token,
          token_type: 'user',
          refresh_token: user.refresh_token,
          expires_in: user.expires_in,
          scope,
        },
      },
      accept,
      ctx.now,
    );
  }
  const issued = state.issueGrant(options, { scope }, ctx.now);
  checked.settle(issued.family);
  const body: Record<string, unknown> = {
    access_token: issued.access_token,
    token_type: 'Bearer',
    refresh_token: issued.refresh_token,
    expires_in: issued.expires_in,
  };
  if (scope !== undefined) body.scope = scope;
  return tokenAnswer(options, body, accept, ctx.now);
}

import { InvalidInputError } from '../errors.ts';
import { SETTING_ENTRIES, type ProviderConfig } from './settings.ts';

/**
 * What a preset knows about a provider: data only. The protocol code reads these settings; no
 * provider name appears in it. Facts come from `shared/design/provider-quirks.md` and the
 * providers' public docs (Nov 2026); where a fact is uncertain the entry says so in `notes`,
 * and the setting chosen is the cautious one. Any of them can be overridden per provider.
 */
export type PresetEntry = Omit<
  ProviderConfig,
  'name' | 'clientId' | 'clientSecret' | 'preset' | 'presetParams'
> & {
  tokenUrl: string;
  /** `{placeholder}` values in the URLs: a default, or null when the caller must give one. */
  params?: Record<string, string | null>;
  /** What is uncertain or surprising about this entry. */
  notes?: string;
};

const DAY = 24 * 3600;

/** Slack's bot and user tokens: one app's endpoints and rules (`slack`, `slack-user`). */
const SLACK = {
  authorizeUrl: 'https://slack.com/oauth/v2/authorize',
  tokenUrl: 'https://slack.com/api/oauth.v2.access',
  apiBaseUrls: ['https://slack.com/api'],
  clientAuth: 'client_secret_post',
  defaultAccessTtlSeconds: 12 * 3600,
  rotatesRefreshTokens: true,
  // Not documented ("?" in the quirk table): assume the worst, never replay.
  reuseDetection: true,
  deadTokenErrors: ['invalid_refresh_token', 'token_revoked', 'token_expired'],
  bearerTokenTypes: ['bot', 'user'],
  // The Web API answers a refused token with HTTP 200 and {"ok":false,"error":"invalid_auth"}
  // (token_expired once a rotating token's 12 hours are up; token_revoked after an uninstall).
  rejectedTokenErrors: ['invalid_auth', 'token_expired', 'token_revoked'],
} as const satisfies PresetEntry;

/** One entry per provider. `{name}` in a URL is filled from `presetParams`. */
export const PROVIDER_PRESETS = {
  google: {
    authorizeUrl: 'https://accounts.google.com/o/oauth2/v2/auth',
    tokenUrl: 'https://oauth2.googleapis.com/token',
    // The older APIs (Drive, Calendar) first, the default for a proxied path; the newer ones
    // have a host each, named per request by origin. Others can be added per provider.
    apiBaseUrls: [
      'https://www.googleapis.com',
      'https://gmail.googleapis.com',
      'https://sheets.googleapis.com',
      'https://docs.googleapis.com',
      'https://slides.googleapis.com',
      'https://people.googleapis.com',
    ],
    revocationUrl: 'https://oauth2.googleapis.com/revoke',
    authorizeParams: { access_type: 'offline', prompt: 'consent' },
    clientAuth: 'client_secret_post',
    defaultAccessTtlSeconds: 3600,
    rotatesRefreshTokens: false,
    reuseDetection: false,
    refreshTokenIdleSeconds: 182 * DAY,
    notes:
      'No rotation. A per-client-per-user cap on live refresh tokens silently kills the oldest ' +
      '(seen as invalid_grant "Token has been expired or revoked."); apps in "Testing" get 7-day ' +
      'refresh tokens: set refreshTokenMaxSeconds to 604800 for those.',
  },
  microsoft: {
    authorizeUrl: 'https://login.microsoftonline.com/{tenant}/oauth2/v2.0/authorize',
    tokenUrl: 'https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token',
    apiBaseUrls: ['https://graph.microsoft.com'],
    params: { tenant: 'common' },
    scopes: ['offline_access'],
    clientAuth: 'client_secret_post',
    defaultAccessTtlSeconds: 3600,
    // A new refresh token on each use, the old one is NOT revoked: a replay is harmless.
    rotatesRefreshTokens: true,
    reuseDetection: false,
    refreshTokenIdleSeconds: 90 * DAY,
    // AADSTS700082 (expired), 700084 (SPA 24 h), 50173 (grant revoked) come as invalid_grant.
    deadTokenErrors: ['interaction_required', 'consent_required'],
    notes:
      'A refresh token only with offline_access (keep it when overriding scopes). No RFC 7009 ' +
      'endpoint: sessions are revoked through Microsoft Graph. Sovereign clouds: override the URLs.',
  },
  salesforce: {
    authorizeUrl: 'https://{domain}/services/oauth2/authorize',
    tokenUrl: 'https://{domain}/services/oauth2/token',
    revocationUrl: 'https://{domain}/services/oauth2/revoke',
    introspectionUrl: 'https://{domain}/services/oauth2/introspect',
    params: { domain: 'login.salesforce.com' },
    clientAuth: 'client_secret_post',
    // No expires_in at all; issued_at (epoch ms as a string) dates the token. The session
    // timeout is per org (default 2 h): override when the org's is shorter.
    defaultAccessTtlSeconds: 7200,
    // Refresh token rotation is optional per connected app; the cautious default assumes it,
    // with its replay detection ("replay revokes all": every token of the user for the app).
    rotatesRefreshTokens: true,
    reuseDetection: true,
    reuseRevokesAllGrants: true,
    refreshTokenIdleSeconds: 30 * DAY,
    transientErrorMessages: ['token request is already being processed'],
    notes:
      'Sandboxes: presetParams.domain = test.salesforce.com, or the org My Domain. Without ' +
      'rotation enabled the response has no refresh_token and the old one is kept. The API is ' +
      "the org's instance_url (its My Domain, https://acme.my.salesforce.com), which differs per " +
      'org, so the preset names none: set apiBaseUrls to it, one provider per org.',
  },
  slack: {
    ...SLACK,
    notes:
      'Bot token (token rotation enabled). Errors come as HTTP 200 {"ok":false,"error":...}. ' +
      "Revocation is auth.revoke, not RFC 7009, so it is not configured. For the installing user's " +
      'token use the slack-user preset.',
  },
  'slack-user': {
    ...SLACK,
    // The code exchange puts the user's token pair under authed_user (next to the bot's).
    tokensAt: 'authed_user',
    notes:
      'User token of a Slack install: the pair under authed_user; refreshes answer at the top level.',
  },
  github: {
    authorizeUrl: 'https://github.com/login/oauth/authorize',
    tokenUrl: 'https://github.com/login/oauth/access_token',
    // Release assets are uploaded to their own host.
    apiBaseUrls: ['https://api.github.com', 'https://uploads.github.com'],
    clientAuth: 'client_secret_post',
    defaultAccessTtlSeconds: 8 * 3600,
    rotatesRefreshTokens: true,
    reuseDetection: true,
    deadTokenErrors: ['bad_refresh_token'],
    notes:
      'GitHub App user tokens (expiring). Errors come as HTTP 200; the answer is form-encoded ' +
      'unless Accept: application/json is sent (it always is). Refreshing kills the old access ' +
      'token. Refresh tokens last 6 months (refresh_token_expires_in). Revocation is a REST ' +
      'call (DELETE /applications/{client_id}/token), not RFC 7009.',
  },
  atlassian: {
    authorizeUrl: 'https://auth.atlassian.com/authorize',
    tokenUrl: 'https://auth.atlassian.com/oauth/token',
    apiBaseUrls: ['https://api.atlassian.com'],
    authorizeParams: { audience: 'api.atlassian.com', prompt: 'consent' },
    scopes: ['offline_access'],
    clientAuth: 'client_secret_json',
    defaultAccessTtlSeconds: 3600,
    rotatesRefreshTokens: true,
    reuseDetection: true,
    reuseGraceSeconds: 600,
    refreshTokenIdleSeconds: 90 * DAY,
    refreshTokenMaxSeconds: 365 * DAY,
    notes:
      'Refusals come as 403 invalid_grant; a refresh response sometimes lacks refresh_token ' +
      '(the old one is kept). Old access and refresh token stay valid for 10 minutes.',
  },
  asana: {
    authorizeUrl: 'https://app.asana.com/-/oauth_authorize',
    tokenUrl: 'https://app.asana.com/-/oauth_token',
    apiBaseUrls: ['https://app.asana.com/api'],
    revocationUrl: 'https://app.asana.com/-/oauth_revoke',
    clientAuth: 'client_secret_post',
    defaultAccessTtlSeconds: 3600,
    rotatesRefreshTokens: false,
    reuseDetection: false,
    notes:
      'Not in the quirk table: values from Asana docs as remembered (refresh tokens do not ' +
      'rotate and do not expire); verify before relying on them.',
  },
  xero: {
    authorizeUrl: 'https://login.xero.com/identity/connect/authorize',
    tokenUrl: 'https://identity.xero.com/connect/token',
    apiBaseUrls: ['https://api.xero.com'],
    revocationUrl: 'https://identity.xero.com/connect/revocation',
    scopes: ['offline_access'],
    clientAuth: 'client_secret_basic',
    defaultAccessTtlSeconds: 1800,
    rotatesRefreshTokens: true,
    reuseDetection: true,
    reuseGraceSeconds: 1800,
    refreshTokenIdleSeconds: 60 * DAY,
  },
  intuit: {
    authorizeUrl: 'https://appcenter.intuit.com/connect/oauth2',
    tokenUrl: 'https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer',
    apiBaseUrls: ['https://quickbooks.api.intuit.com'],
    revocationUrl: 'https://developer.api.intuit.com/v2/oauth2/tokens/revoke',
    clientAuth: 'client_secret_basic',
    defaultAccessTtlSeconds: 3600,
    // "The refresh token value may change; always store the latest": rotation, reuse punishment
    // unknown ("?"), so a replay after a crash is allowed and judged by the answer.
    rotatesRefreshTokens: true,
    reuseDetection: false,
    refreshTokenIdleSeconds: 100 * DAY,
    refreshTokenMaxSeconds: 5 * 365 * DAY,
    notes: 'Intuit QuickBooks. Reuse detection is not documented; verify before relying on replay.',
  },
  hubspot: {
    authorizeUrl: 'https://app.hubspot.com/oauth/authorize',
    tokenUrl: 'https://api.hubapi.com/oauth/v1/token',
    apiBaseUrls: ['https://api.hubapi.com'],
    clientAuth: 'client_secret_post',
    defaultAccessTtlSeconds: 1800,
    rotatesRefreshTokens: false,
    reuseDetection: false,
    // Errors are {"status":"BAD_REFRESH_TOKEN","message":...}; 429 on the token endpoint.
    deadTokenErrors: ['BAD_REFRESH_TOKEN'],
    notes: 'Revocation is DELETE /oauth/v1/refresh-tokens/{token}, not RFC 7009.',
  },
  zoom: {
    authorizeUrl: 'https://zoom.us/oauth/authorize',
    tokenUrl: 'https://zoom.us/oauth/token',
    apiBaseUrls: ['https://api.zoom.us'],
    revocationUrl: 'https://zoom.us/oauth/revoke',
    clientAuth: 'client_secret_basic',
    defaultAccessTtlSeconds: 3600,
    rotatesRefreshTokens: true,
    reuseDetection: true,
    refreshTokenIdleSeconds: 90 * DAY,
    // An old refresh token is answered {"reason":"Invalid Token!","error":"invalid_request"}.
    deadTokenMessages: ['Invalid Token!'],
    notes: 'Refresh token lifetime is reported both as 90 days and 15 years; 90 days assumed.',
  },
  dropbox: {
    authorizeUrl: 'https://www.dropbox.com/oauth2/authorize',
    tokenUrl: 'https://api.dropboxapi.com/oauth2/token',
    apiBaseUrls: ['https://api.dropboxapi.com', 'https://content.dropboxapi.com'],
    authorizeParams: { token_access_type: 'offline' },
    clientAuth: 'client_secret_basic',
    defaultAccessTtlSeconds: 4 * 3600,
    rotatesRefreshTokens: false,
    reuseDetection: false,
    notes:
      'Refresh responses omit refresh_token (the old one is kept). Revocation needs the access ' +
      'token as a bearer (POST /2/auth/token/revoke), not RFC 7009.',
  },
  okta: {
    authorizeUrl: 'https://{domain}/oauth2/{authorizationServer}/v1/authorize',
    tokenUrl: 'https://{domain}/oauth2/{authorizationServer}/v1/token',
    revocationUrl: 'https://{domain}/oauth2/{authorizationServer}/v1/revoke',
    introspectionUrl: 'https://{domain}/oauth2/{authorizationServer}/v1/introspect',
    params: { domain: null, authorizationServer: 'default' },
    scopes: ['offline_access'],
    clientAuth: 'client_secret_basic',
    defaultAccessTtlSeconds: 3600,
    rotatesRefreshTokens: true,
    reuseDetection: true,
    reuseGraceSeconds: 30,
    notes: 'Lifetimes and the grace period (default 30 s) are per policy: override to match.',
  },
  auth0: {
    authorizeUrl: 'https://{domain}/authorize',
    tokenUrl: 'https://{domain}/oauth/token',
    revocationUrl: 'https://{domain}/oauth/revoke',
    params: { domain: null },
    scopes: ['offline_access'],
    clientAuth: 'client_secret_post',
    defaultAccessTtlSeconds: 86_400,
    rotatesRefreshTokens: true,
    reuseDetection: true,
    // The reuse interval (leeway) is 0 unless configured: override reuseGraceSeconds to match.
    reuseGraceSeconds: 0,
    notes:
      'Reuse of a spent refresh token revokes the family; refusals are 403 invalid_grant ' +
      '"Unknown or invalid refresh token."',
  },
} as const satisfies Record<string, PresetEntry>;

export type PresetName = keyof typeof PROVIDER_PRESETS;

export const PRESET_NAMES = Object.keys(PROVIDER_PRESETS) as PresetName[];

function isPreset(name: unknown): name is PresetName {
  return typeof name === 'string' && Object.hasOwn(PROVIDER_PRESETS, name);
}

/**
 * A provider configuration from a preset: the preset's URLs (placeholders filled from
 * `overrides.presetParams`) and settings, with every setting given in `overrides` winning.
 * Throws InvalidInputError for an unknown preset or a missing placeholder value.
 *
 * ```ts
 * resolvePreset('okta', { name: 'okta', clientId, clientSecret, presetParams: { domain: 'acme.okta.com' } });
 * ```
 */
export function resolvePreset(
  name: string,
  overrides: Omit<ProviderConfig, 'preset'>,
): ProviderConfig {
  return applyPreset({ ...overrides, preset: name });
}

/** `config` with the settings of its preset filled in where it gives none. */
export function applyPreset(config: ProviderConfig): ProviderConfig {
  const name = config.preset;
  if (!isPreset(name)) {
    throw new InvalidInputError('preset', `must be one of ${PRESET_NAMES.join(', ')}`);
  }
  const entry: PresetEntry = PROVIDER_PRESETS[name];
  const { params: defaults = {}, notes: _notes, ...settings } = entry;
  const given = config.presetParams ?? {};
  if (typeof given !== 'object' || given === null || Array.isArray(given)) {
    throw new InvalidInputError('preset_params', 'must be an object of strings');
  }
  for (const key of Object.keys(given)) {
    if (!Object.hasOwn(defaults, key)) {
      throw new InvalidInputError(`preset_params.${key}`, `is not a parameter of preset ${name}`);
    }
  }
  const values: Record<string, string> = {};
  for (const [key, fallback] of Object.entries(defaults)) {
    const value = given[key] ?? fallback;
    // A host or path segment: nothing that could change which server the URL points at.
    if (typeof value !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$/.test(value)) {
      throw new InvalidInputError(
        `preset_params.${key}`,
        value === null
          ? `is required by preset ${name}`
          : 'must be a host name or path segment (letters, digits, . and -)',
      );
    }
    values[key] = value;
  }
  const fill = (url: string) => url.replace(/\{(\w+)\}/g, (_, key: string) => values[key] ?? '');
  const base: Record<string, unknown> = {
    ...settings,
    name: config.name,
    clientId: config.clientId,
  };
  for (const [key, setting] of SETTING_ENTRIES) {
    const value = base[key];
    if (!setting.placeholders || value === undefined) continue;
    base[key] = Array.isArray(value)
      ? value.map((url: string) => fill(url))
      : fill(value as string);
  }
  for (const [key, value] of Object.entries(config)) {
    if (value !== undefined) base[key] = value;
  }
  return base as unknown as ProviderConfig;
}

import {
  discoverProvider,
  PRESET_NAMES,
  PROVIDER_PRESETS,
  type ProviderConfig,
  type ResolvedProvider,
} from '@tokenwarden/core';
import type { FastifyPluginAsync } from 'fastify';
import { errorCodeOf, InvalidRequestError } from '../errors.ts';
import { authenticateAdmin, recordAudit, type ServerContext } from '../http/context.ts';
import { errorResponses, providerName } from '../http/schemas.ts';

const url = { type: 'string', minLength: 1, maxLength: 2048, format: 'uri' } as const;

/** `preset: "oidc"`: no catalog entry, the settings come from the issuer's metadata. */
const DISCOVERY_PRESET = 'oidc';

interface ProviderBody {
  preset?: string;
  preset_params?: Record<string, string>;
  issuer?: string;
  token_url?: string;
  client_id: string;
  client_secret?: string;
  client_auth?: 'client_secret_basic' | 'client_secret_post' | 'client_secret_json';
  grant_type?: 'refresh_token' | 'client_credentials';
  authorize_url?: string;
  revocation_url?: string;
  introspection_url?: string;
  scopes?: string[];
  authorize_params?: Record<string, string>;
  default_access_ttl_seconds?: number;
  rotates_refresh_tokens?: boolean;
  reuse_detection?: boolean;
  reuse_grace_seconds?: number;
  request_timeout_ms?: number;
  refresh_token_idle_seconds?: number;
  refresh_token_max_seconds?: number;
  dead_token_errors?: string[];
  dead_token_messages?: string[];
  transient_error_messages?: string[];
  tokens_at?: string;
  bearer_token_types?: string[];
}

const shortStrings = {
  type: 'array',
  maxItems: 50,
  items: { type: 'string', minLength: 1, maxLength: 200 },
} as const;

const stringMap = {
  type: 'object',
  maxProperties: 50,
  propertyNames: { pattern: '^[A-Za-z0-9_.-]{1,64}$' },
  additionalProperties: { type: 'string', minLength: 1, maxLength: 200 },
} as const;

const providerBody = {
  type: 'object',
  additionalProperties: false,
  required: ['client_id'],
  properties: {
    preset: {
      type: 'string',
      enum: [...PRESET_NAMES, DISCOVERY_PRESET],
      description:
        'A catalog entry (GET /v1/presets) whose URLs and settings apply unless given here; ' +
        '"oidc" discovers them from `issuer` (OpenID Connect Discovery) at this call.',
    },
    preset_params: {
      ...stringMap,
      description:
        'Values for the {placeholders} of the preset\'s URLs, e.g. {"domain": "acme.okta.com"}.',
    },
    issuer: {
      ...url,
      description:
        'RFC 9207 issuer: an `iss` in the authorization response must match it. With preset "oidc", ' +
        'where the metadata is discovered.',
    },
    token_url: {
      ...url,
      description: 'https, or plain http on a loopback host only. Required without a preset.',
    },
    client_id: { type: 'string', minLength: 1, maxLength: 512 },
    client_secret: {
      type: 'string',
      minLength: 1,
      maxLength: 4096,
      description: 'Stored sealed; never returned.',
    },
    client_auth: {
      type: 'string',
      enum: ['client_secret_basic', 'client_secret_post', 'client_secret_json'],
    },
    grant_type: {
      type: 'string',
      enum: ['refresh_token', 'client_credentials'],
      description: 'client_credentials makes every connection a machine token.',
    },
    authorize_url: { ...url, description: 'RFC 6749 §3.1, for the connect flow.' },
    revocation_url: {
      ...url,
      description: 'RFC 7009: tokens are revoked when a connection is deleted.',
    },
    introspection_url: { ...url, description: 'RFC 7662: POST /v1/connections/{id}/introspect.' },
    scopes: {
      type: 'array',
      maxItems: 100,
      items: { type: 'string', pattern: '^[\\x21\\x23-\\x5b\\x5d-\\x7e]{1,256}$' },
    },
    authorize_params: {
      ...stringMap,
      description: 'Extra authorization request parameters (access_type=offline, prompt=consent).',
    },
    // How the provider behaves (see docs/protocol.md); defaults are the cautious ones.
    default_access_ttl_seconds: { type: 'integer', minimum: 1, maximum: 31_536_000 },
    rotates_refresh_tokens: { type: 'boolean' },
    reuse_detection: { type: 'boolean' },
    reuse_grace_seconds: { type: 'number', minimum: 0, maximum: 86_400 },
    request_timeout_ms: { type: 'integer', minimum: 100, maximum: 60_000 },
    refresh_token_idle_seconds: { type: 'integer', minimum: 60, maximum: 315_360_000 },
    refresh_token_max_seconds: { type: 'integer', minimum: 60, maximum: 315_360_000 },
    // Provider quirks as data (docs/protocol.md, "Quirks are data").
    dead_token_errors: shortStrings,
    dead_token_messages: shortStrings,
    transient_error_messages: shortStrings,
    tokens_at: { type: 'string', minLength: 1, maxLength: 200 },
    bearer_token_types: shortStrings,
  },
} as const;

const providerView = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'token_url', 'client_id', 'client_auth', 'has_client_secret'],
  properties: {
    name: { type: 'string' },
    token_url: { type: 'string' },
    client_id: { type: 'string' },
    client_auth: { type: 'string' },
    has_client_secret: { type: 'boolean' },
    authorize_url: { type: ['string', 'null'] },
    revocation_url: { type: ['string', 'null'] },
    scopes: { type: 'array', items: { type: 'string' } },
    default_access_ttl_seconds: { type: 'integer' },
    rotates_refresh_tokens: { type: 'boolean' },
    reuse_detection: { type: 'boolean' },
    reuse_grace_seconds: { type: 'number' },
    request_timeout_ms: { type: 'integer' },
    refresh_token_idle_seconds: { type: ['integer', 'null'] },
    // Shown only when set (or, for lists and maps, not empty; grant_type when not refresh_token).
    preset: { type: 'string' },
    preset_params: { type: 'object', additionalProperties: { type: 'string' } },
    issuer: { type: 'string' },
    introspection_url: { type: 'string' },
    grant_type: { type: 'string' },
    authorize_params: { type: 'object', additionalProperties: { type: 'string' } },
    refresh_token_max_seconds: { type: 'integer' },
    dead_token_errors: { type: 'array', items: { type: 'string' } },
    dead_token_messages: { type: 'array', items: { type: 'string' } },
    transient_error_messages: { type: 'array', items: { type: 'string' } },
    tokens_at: { type: 'string' },
    bearer_token_types: { type: 'array', items: { type: 'string' } },
  },
} as const;

const presetView = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'params'],
  properties: {
    name: { type: 'string' },
    token_url: { type: ['string', 'null'] },
    authorize_url: { type: ['string', 'null'] },
    revocation_url: { type: ['string', 'null'] },
    introspection_url: { type: ['string', 'null'] },
    params: {
      type: 'object',
      additionalProperties: { type: ['string', 'null'] },
      description:
        'Placeholders of the URLs: the default, or null when preset_params must name it.',
    },
    notes: { type: ['string', 'null'] },
  },
} as const;

const nameParams = {
  type: 'object',
  required: ['name'],
  additionalProperties: false,
  properties: { name: providerName },
} as const;

/** Provider configuration (admin). The client secret goes in, is sealed, and never comes out. */
export const providerRoutes: FastifyPluginAsync<ServerContext> = async (app, ctx) => {
  app.addHook('onRequest', authenticateAdmin(ctx));

  app.put<{ Params: { name: string }; Body: ProviderBody }>(
    '/v1/providers/:name',
    {
      schema: {
        tags: ['providers'],
        summary: 'Create or replace a provider, from a preset or by hand (admin)',
        description:
          'Replaces the whole configuration: a client_secret left out means none. Plain http URLs ' +
          'are refused unless the host is loopback. With `preset`, every field given overrides the ' +
          "preset's (proxies, sovereign clouds, tests); the stored provider follows catalog fixes. " +
          'With preset "oidc", `issuer` is discovered now and its endpoints are stored; an issuer ' +
          'that cannot be discovered is refused (invalid_request, field issuer).',
        params: nameParams,
        body: providerBody,
        response: { 200: providerView, ...errorResponses(400, 401, 403, 413) },
      },
      config: { auditAction: 'provider.put' },
    },
    async (request) => {
      const { name } = request.params;
      let resolved: ResolvedProvider;
      try {
        resolved = await ctx.broker.providers.put(await providerConfig(ctx, name, request.body));
      } catch (error) {
        recordAudit(ctx, request, {
          action: 'provider.put',
          outcome: errorCodeOf(error),
          provider: name,
          detail: request.body.preset === undefined ? undefined : { preset: request.body.preset },
        });
        throw error;
      }
      recordAudit(ctx, request, {
        action: 'provider.put',
        outcome: 'ok',
        provider: name,
        detail:
          request.body.preset === undefined
            ? { has_client_secret: resolved.clientSecret !== undefined }
            : {
                has_client_secret: resolved.clientSecret !== undefined,
                preset: request.body.preset,
              },
      });
      return view(resolved);
    },
  );

  app.get(
    '/v1/providers',
    {
      schema: {
        tags: ['providers'],
        summary: 'Every configured provider, without secrets (admin)',
        response: {
          200: {
            type: 'object',
            additionalProperties: false,
            required: ['providers'],
            properties: { providers: { type: 'array', items: providerView } },
          },
          ...errorResponses(401, 403),
        },
      },
      config: { auditAction: 'provider.list' },
    },
    async () => ({ providers: (await ctx.broker.providers.list()).map(view) }),
  );

  app.get<{ Params: { name: string } }>(
    '/v1/providers/:name',
    {
      schema: {
        tags: ['providers'],
        summary: 'One provider, without its secret (admin)',
        params: nameParams,
        response: { 200: providerView, ...errorResponses(400, 401, 403, 404) },
      },
      config: { auditAction: 'provider.read' },
    },
    async (request, reply) => {
      const provider = await ctx.broker.providers.get(request.params.name);
      if (!provider) {
        return reply.code(404).send({ error: 'not_found', message: 'No provider with this name.' });
      }
      return view(provider);
    },
  );

  app.get(
    '/v1/presets',
    {
      schema: {
        tags: ['providers'],
        summary: 'The provider presets PUT /v1/providers/{name} accepts (admin)',
        description:
          'The catalog entries, and "oidc" (any OpenID Connect issuer, discovered from `issuer`).',
        response: {
          200: {
            type: 'object',
            additionalProperties: false,
            required: ['presets'],
            properties: { presets: { type: 'array', items: presetView } },
          },
          ...errorResponses(401, 403),
        },
      },
      config: { auditAction: 'preset.list' },
    },
    async () => ({
      presets: [
        ...PRESET_NAMES.map(presetEntryView),
        {
          name: DISCOVERY_PRESET,
          token_url: null,
          authorize_url: null,
          revocation_url: null,
          introspection_url: null,
          params: {},
          notes: 'Any OpenID Connect issuer: give `issuer`; its metadata is discovered at PUT.',
        },
      ],
    }),
  );
};

/**
 * The core configuration of a PUT body. A catalog preset is passed on by name (core fills in
 * its settings under the ones given, and keeps following the catalog); "oidc" is discovered
 * here, once, and its endpoints are stored like settings given by hand.
 */
async function providerConfig(
  ctx: ServerContext,
  name: string,
  body: ProviderBody,
): Promise<ProviderConfig> {
  const given: ProviderConfig = {
    name,
    preset: body.preset === DISCOVERY_PRESET ? undefined : body.preset,
    presetParams: body.preset_params,
    issuer: body.issuer,
    tokenUrl: body.token_url,
    clientId: body.client_id,
    clientSecret: body.client_secret,
    clientAuth: body.client_auth,
    grantType: body.grant_type,
    authorizeUrl: body.authorize_url,
    revocationUrl: body.revocation_url,
    introspectionUrl: body.introspection_url,
    scopes: body.scopes,
    authorizeParams: body.authorize_params,
    defaultAccessTtlSeconds: body.default_access_ttl_seconds,
    rotatesRefreshTokens: body.rotates_refresh_tokens,
    reuseDetection: body.reuse_detection,
    reuseGraceSeconds: body.reuse_grace_seconds,
    requestTimeoutMs: body.request_timeout_ms,
    refreshTokenIdleSeconds: body.refresh_token_idle_seconds,
    refreshTokenMaxSeconds: body.refresh_token_max_seconds,
    deadTokenErrors: body.dead_token_errors,
    deadTokenMessages: body.dead_token_messages,
    transientErrorMessages: body.transient_error_messages,
    tokensAt: body.tokens_at,
    bearerTokenTypes: body.bearer_token_types,
  };
  if (body.preset !== DISCOVERY_PRESET) {
    if (body.preset === undefined && body.token_url === undefined) {
      throw new InvalidRequestError('token_url: is required unless a preset is given');
    }
    if (body.preset === undefined && body.preset_params !== undefined) {
      throw new InvalidRequestError('preset_params: is only meaningful with a preset');
    }
    return given;
  }
  if (body.issuer === undefined) {
    throw new InvalidRequestError('issuer: is required with preset "oidc"');
  }
  if (body.preset_params !== undefined) {
    throw new InvalidRequestError('preset_params: preset "oidc" has no parameters');
  }
  const discovered = await discoverProvider(body.issuer, { fetch: ctx.fetch });
  const config: Record<string, unknown> = { ...discovered };
  for (const [key, value] of Object.entries(given)) {
    if (value !== undefined) config[key] = value;
  }
  return config as unknown as ProviderConfig;
}

/** Every field but the client secret, whose presence alone is shown. */
function view(provider: ResolvedProvider) {
  return {
    name: provider.name,
    token_url: provider.tokenUrl,
    client_id: provider.clientId,
    client_auth: provider.clientAuth,
    has_client_secret: provider.clientSecret !== undefined,
    authorize_url: provider.authorizeUrl ?? null,
    revocation_url: provider.revocationUrl ?? null,
    scopes: provider.scopes ?? [],
    default_access_ttl_seconds: provider.defaultAccessTtlSeconds,
    rotates_refresh_tokens: provider.rotatesRefreshTokens,
    reuse_detection: provider.reuseDetection,
    reuse_grace_seconds: provider.reuseGraceSeconds,
    request_timeout_ms: provider.requestTimeoutMs,
    refresh_token_idle_seconds: provider.refreshTokenIdleSeconds ?? null,
    ...extendedView(provider),
  };
}

/** The settings beyond the original contract, each only when it says something. */
function extendedView(provider: ResolvedProvider): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const some = (list: readonly string[]) => (list.length > 0 ? [...list] : undefined);
  const map = (value: Record<string, string> | undefined) =>
    value && Object.keys(value).length > 0 ? { ...value } : undefined;
  const fields: Record<string, unknown> = {
    preset: provider.preset,
    preset_params: map(provider.presetParams),
    issuer: provider.issuer,
    introspection_url: provider.introspectionUrl,
    grant_type: provider.grantType === 'refresh_token' ? undefined : provider.grantType,
    authorize_params: map(provider.authorizeParams),
    refresh_token_max_seconds: provider.refreshTokenMaxSeconds,
    dead_token_errors: some(provider.deadTokenErrors),
    dead_token_messages: some(provider.deadTokenMessages),
    transient_error_messages: some(provider.transientErrorMessages),
    tokens_at: provider.tokensAt,
    bearer_token_types: some(provider.bearerTokenTypes),
  };
  for (const [key, value] of Object.entries(fields)) if (value !== undefined) out[key] = value;
  return out;
}

/** A catalog entry as GET /v1/presets shows it: where it points and what it needs. */
function presetEntryView(name: string) {
  const entry = PROVIDER_PRESETS[name as keyof typeof PROVIDER_PRESETS] as {
    tokenUrl: string;
    authorizeUrl?: string;
    revocationUrl?: string;
    introspectionUrl?: string;
    params?: Record<string, string | null>;
    notes?: string;
  };
  return {
    name,
    token_url: entry.tokenUrl,
    authorize_url: entry.authorizeUrl ?? null,
    revocation_url: entry.revocationUrl ?? null,
    introspection_url: entry.introspectionUrl ?? null,
    params: { ...entry.params },
    notes: entry.notes ?? null,
  };
}

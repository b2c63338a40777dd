import type { ProviderConfig, ResolvedProvider } from '@tokenwarden/core';
import type { FastifyPluginAsync } from 'fastify';
import { errorCodeOf } from '../errors.ts';
import { authenticateAdmin, recordAudit, type ServerContext } from '../http/context.ts';
import { errorResponses, providerName } from '../http/schemas.ts';

const url = { type: 'string', minLength: 1, maxLength: 2048, format: 'uri' } as const;

interface ProviderBody {
  token_url: string;
  client_id: string;
  client_secret?: string;
  client_auth?: 'client_secret_basic' | 'client_secret_post';
  authorize_url?: string;
  revocation_url?: string;
  scopes?: string[];
  default_access_ttl_seconds?: number;
  rotates_refresh_tokens?: boolean;
  reuse_detection?: boolean;
  reuse_grace_seconds?: number;
  request_timeout_ms?: number;
  refresh_token_idle_seconds?: number;
}

const providerBody = {
  type: 'object',
  additionalProperties: false,
  required: ['token_url', 'client_id'],
  properties: {
    token_url: { ...url, description: 'https, or plain http on a loopback host only.' },
    client_id: { type: 'string', minLength: 1, maxLength: 512 },
    client_secret: {
      type: 'string',
      minLength: 1,
      maxLength: 4096,
      description: 'Stored sealed; never returned.',
    },
    client_auth: { type: 'string', enum: ['client_secret_basic', 'client_secret_post'] },
    authorize_url: url,
    revocation_url: url,
    scopes: {
      type: 'array',
      maxItems: 100,
      items: { type: 'string', pattern: '^[\\x21\\x23-\\x5b\\x5d-\\x7e]{1,256}$' },
    },
    // How the provider behaves (see docs/protocol.md); defaults are the cautious ones.
    default_access_ttl_seconds: { type: 'integer', minimum: 1, maximum: 31_536_000 },
    rotates_refresh_tokens: { type: 'boolean' },
    reuse_detection: { type: 'boolean' },
    reuse_grace_seconds: { type: 'number', minimum: 0, maximum: 86_400 },
    request_timeout_ms: { type: 'integer', minimum: 100, maximum: 60_000 },
    refresh_token_idle_seconds: { type: 'integer', minimum: 60, maximum: 315_360_000 },
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
        summary: 'Create or replace a provider (admin)',
        description:
          'Replaces the whole configuration: a client_secret left out means none. Plain http token ' +
          'URLs are refused unless the host is loopback.',
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
        resolved = await ctx.broker.providers.put(providerConfig(name, request.body));
      } catch (error) {
        recordAudit(ctx, request, {
          action: 'provider.put',
          outcome: errorCodeOf(error),
          provider: name,
        });
        throw error;
      }
      recordAudit(ctx, request, {
        action: 'provider.put',
        outcome: 'ok',
        provider: name,
        detail: { has_client_secret: resolved.clientSecret !== undefined },
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
};

function providerConfig(name: string, body: ProviderBody): ProviderConfig {
  return {
    name,
    tokenUrl: body.token_url,
    clientId: body.client_id,
    clientSecret: body.client_secret,
    clientAuth: body.client_auth,
    authorizeUrl: body.authorize_url,
    revocationUrl: body.revocation_url,
    scopes: body.scopes,
    defaultAccessTtlSeconds: body.default_access_ttl_seconds,
    rotatesRefreshTokens: body.rotates_refresh_tokens,
    reuseDetection: body.reuse_detection,
    reuseGraceSeconds: body.reuse_grace_seconds,
    requestTimeoutMs: body.request_timeout_ms,
    refreshTokenIdleSeconds: body.refresh_token_idle_seconds,
  };
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
  };
}

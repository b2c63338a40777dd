import {
  probeTokenEndpoint,
  SETTING_ENTRIES,
  type ProviderConfig,
  type ResolvedProvider,
} from '@tokenwarden/core';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { errorCodeOf, InvalidRequestError } from '../errors.ts';
import { authenticateAdmin, recordAudit, type ServerContext } from '../http/context.ts';
import { closedObject, errorResponses, listReply, providerName } from '../http/schemas.ts';
import {
  mergePatch,
  providerConfig,
  settingsAsBody,
  type ProviderBody,
} from './provider-config.ts';
import {
  presetListings,
  presetView,
  probeView,
  providerBody,
  providerPatchBody,
  providerView,
  view,
} from './provider-schemas.ts';

const nameParams = closedObject({ name: providerName }, ['name']);

const SECRETS = SETTING_ENTRIES.filter(([, setting]) => setting.secret);

type NamedRequest<Body = unknown> = FastifyRequest<{ Params: { name: string }; Body: Body }>;

/** Provider configuration (admin). The client secret goes in, is sealed, and never comes out. */
export const providerRoutes: FastifyPluginAsync<ServerContext> = async (app, ctx) => {
  app.addHook('onRequest', authenticateAdmin(ctx));

  /** Stores `config()`'s result and audits the change, or the error code that refused it. */
  async function store(
    request: NamedRequest,
    action: string,
    preset: string | undefined,
    config: () => Promise<ProviderConfig>,
  ): Promise<Record<string, unknown>> {
    const { name } = request.params;
    const detail: Record<string, unknown> = preset === undefined ? {} : { preset };
    let resolved: ResolvedProvider;
    try {
      resolved = await ctx.broker.providers.put(await config());
    } catch (error) {
      const outcome = errorCodeOf(error);
      recordAudit(ctx, request, {
        action,
        outcome,
        provider: name,
        detail: preset === undefined ? undefined : detail,
      });
      throw error;
    }
    detail.has_client_secret = resolved.clientSecret !== undefined;
    recordAudit(ctx, request, { action, outcome: 'ok', provider: name, detail });
    return view(resolved);
  }

  app.put<{ Params: { name: string }; Body: ProviderBody }>(
    '/v1/providers/:name',
    {
      schema: {
        tags: ['providers'],
        summary: 'Create or replace a provider, from a preset or by hand (admin)',
        description:
          'Replaces the whole configuration. A client_secret is never dropped by leaving it out: ' +
          'while one is stored, a PUT without client_secret is refused (invalid_request, field ' +
          'client_secret); send it again, send `"client_secret": null` to drop it, or change ' +
          'single settings with PATCH. Plain http URLs are refused unless the host is loopback. ' +
          "With `preset`, every field given overrides the preset's (proxies, sovereign clouds, " +
          'tests); the stored provider follows catalog fixes. With preset "oidc", `issuer` is ' +
          'discovered now and its endpoints are stored; an issuer that cannot be discovered is ' +
          'refused (invalid_request, field issuer).',
        params: nameParams,
        body: providerBody,
        response: { 200: providerView, ...errorResponses(400, 401, 403, 413) },
      },
      config: { auditAction: 'provider.put' },
    },
    (request) =>
      store(request, 'provider.put', request.body.preset, async () => {
        const { name } = request.params;
        const body = request.body;
        const stored = SECRETS.some(([, s]) => body[s.wire] === undefined)
          ? await ctx.broker.providers.configOf(name)
          : undefined;
        for (const [key, setting] of SECRETS) {
          if (body[setting.wire] !== undefined || stored?.[key] === undefined) continue;
          throw new InvalidRequestError(
            `${setting.wire}: provider ${name} has a stored ${setting.wire} that this PUT would ` +
              `drop: send it again, send "${setting.wire}": null to drop it, or change single ` +
              `settings with PATCH /v1/providers/${name}`,
          );
        }
        return providerConfig(ctx, name, body);
      }),
  );

  app.patch<{ Params: { name: string }; Body: ProviderBody }>(
    '/v1/providers/:name',
    {
      schema: {
        tags: ['providers'],
        summary: 'Change some settings of a provider (admin)',
        description:
          'An RFC 7396 JSON merge patch over the stored configuration: the settings given replace ' +
          'the stored ones, null removes one (`"client_secret": null` drops the secret), the rest ' +
          'is kept, the client secret included. The merged configuration is checked as a whole, ' +
          'as a PUT of it would be, and nothing is stored when it is refused. Two PATCHes at the ' +
          'same moment: the last one stored wins.',
        params: nameParams,
        body: providerPatchBody,
        response: { 200: providerView, ...errorResponses(400, 401, 403, 404, 413) },
      },
      config: { auditAction: 'provider.patch' },
    },
    async (request, reply) => {
      const { name } = request.params;
      const stored = await ctx.broker.providers.configOf(name);
      if (!stored) return noSuchProvider(reply);
      const merged = mergePatch(settingsAsBody(stored), request.body) as ProviderBody;
      return store(request, 'provider.patch', merged.preset, () =>
        providerConfig(ctx, name, merged),
      );
    },
  );

  app.post<{ Params: { name: string } }>(
    '/v1/providers/:name/test',
    {
      schema: {
        tags: ['providers'],
        summary: "Check a provider's settings against its token endpoint (admin)",
        description:
          'Sends a refresh token grant with a random refresh token that was never issued, so ' +
          'nothing can be redeemed, and reads the answer: invalid_grant means the endpoint is ' +
          'reachable and accepts the client credentials; invalid_client or a 401 means it ' +
          'rejects them; no answer, a 5xx or a 429 means it is unreachable. Always 200 when the ' +
          'provider exists: the verdict is in the body.',
        params: nameParams,
        response: { 200: probeView, ...errorResponses(400, 401, 403, 404) },
      },
      config: { auditAction: 'provider.test' },
    },
    async (request, reply) => {
      const provider = await ctx.broker.providers.get(request.params.name);
      if (!provider) return noSuchProvider(reply);
      const result = await probeTokenEndpoint(provider, { fetch: ctx.fetch });
      recordAudit(ctx, request, {
        action: 'provider.test',
        outcome: 'ok',
        provider: provider.name,
        detail: { verdict: result.verdict, code: result.code },
      });
      return { name: provider.name, token_url: provider.tokenUrl, ...result };
    },
  );

  app.get(
    '/v1/providers',
    {
      schema: {
        tags: ['providers'],
        summary: 'Every configured provider, without secrets (admin)',
        response: { 200: listReply('providers', providerView), ...errorResponses(401, 403) },
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
      if (!provider) return noSuchProvider(reply);
      return view(provider);
    },
  );

  app.delete<{ Params: { name: string } }>(
    '/v1/providers/:name',
    {
      schema: {
        tags: ['providers'],
        summary: 'Delete a stored provider that no connection uses (admin)',
        description:
          'Refused (invalid_request) while any connection names the provider: delete those ' +
          'first. Other replicas stop using it within their provider cache time (5 s).',
        params: nameParams,
        response: { 204: { type: 'null' }, ...errorResponses(400, 401, 403, 404) },
      },
      config: { auditAction: 'provider.delete' },
    },
    async (request, reply) => {
      const { name } = request.params;
      const audit = (outcome: string) =>
        recordAudit(ctx, request, { action: 'provider.delete', outcome, provider: name });
      const [inUse] = await ctx.service.listCredentials({ provider: name, limit: 1 });
      if (inUse) {
        audit('invalid_request');
        throw new InvalidRequestError(
          `provider ${name} still has connections (${inUse.id} among them): delete them first`,
        );
      }
      let deleted: boolean;
      try {
        deleted = await ctx.broker.providers.delete(name);
      } catch (error) {
        audit(errorCodeOf(error));
        throw error;
      }
      audit(deleted ? 'ok' : 'not_found');
      return deleted ? reply.code(204).send() : noSuchProvider(reply);
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
        response: { 200: listReply('presets', presetView), ...errorResponses(401, 403) },
      },
      config: { auditAction: 'preset.list' },
    },
    async () => ({ presets: presetListings() }),
  );
};

function noSuchProvider(reply: FastifyReply): FastifyReply {
  return reply.code(404).send({ error: 'not_found', message: 'No provider with this name.' });
}

import {
  discoverProvider,
  PRESET_NAMES,
  PROVIDER_PRESETS,
  SETTING_ENTRIES,
  type JsonSchema,
  type ProviderConfig,
  type ResolvedProvider,
  type Setting,
  type SettingName,
} from '@tokenwarden/core';
import type { FastifyPluginAsync } from 'fastify';
import { errorCodeOf, InvalidRequestError } from '../errors.ts';
import { authenticateAdmin, recordAudit, type ServerContext } from '../http/context.ts';
import { errorResponses, providerName } from '../http/schemas.ts';

/** `preset: "oidc"`: no catalog entry, the settings come from the issuer's metadata. */
const DISCOVERY_PRESET = 'oidc';

/** A PUT body: each setting of core's table under its wire name. */
type ProviderBody = Record<string, unknown> & {
  preset?: string;
  preset_params?: Record<string, string>;
  issuer?: string;
  token_url?: string;
};

/** What the HTTP API adds to a setting's doc line: what only this API does with it. */
const API_NOTES: Partial<Record<SettingName, string>> = {
  preset: 'See GET /v1/presets; "oidc" discovers the settings from `issuer` at this call.',
  issuer: 'With preset "oidc", where the metadata is discovered (OpenID Connect Discovery).',
  introspectionUrl: 'Used by POST /v1/connections/{id}/introspect.',
};

const providerBody = {
  type: 'object',
  additionalProperties: false,
  required: SETTING_ENTRIES.filter(([, s]) => s.required === 'given').map(([, s]) => s.wire),
  properties: Object.fromEntries(
    SETTING_ENTRIES.map(([name, setting]) => {
      const note = API_NOTES[name];
      const schema: Record<string, unknown> = {
        ...setting.schema,
        description: note === undefined ? setting.doc : `${setting.doc} ${note}`,
      };
      if (name === 'preset') schema.enum = [...PRESET_NAMES, DISCOVERY_PRESET];
      return [setting.wire, schema];
    }),
  ),
} as const;

/**
 * The view of each setting: its type without the input's bounds, nullable when it is always
 * shown but may be unset; a secret only as `has_<wire>`.
 */
const providerView = {
  type: 'object',
  additionalProperties: false,
  required: [
    'name',
    ...SETTING_ENTRIES.filter(([, s]) => s.view === 'required').map(([, s]) => viewName(s)),
  ],
  properties: {
    name: { type: 'string' },
    ...Object.fromEntries(SETTING_ENTRIES.map(([, s]) => [viewName(s), viewSchema(s)])),
  },
} as const;

function viewName(setting: Setting<unknown>): string {
  return setting.secret ? `has_${setting.wire}` : setting.wire;
}

function viewSchema(setting: Setting<unknown>): JsonSchema {
  if (setting.secret)
    return { type: 'boolean', description: `Whether a ${setting.wire} is stored.` };
  const type = setting.schema.type as string;
  const description = setting.doc;
  if (type === 'array') return { type, items: { type: 'string' }, description };
  if (type === 'object') return { type, additionalProperties: { type: 'string' }, description };
  const nullable = setting.view === 'always' && setting.default === undefined;
  return { type: nullable ? [type, 'null'] : type, description };
}

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
  const settings: Record<string, unknown> = { name };
  for (const [key, setting] of SETTING_ENTRIES) settings[key] = body[setting.wire];
  settings.preset = body.preset === DISCOVERY_PRESET ? undefined : body.preset;
  const given = settings as ProviderConfig;
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

/**
 * Every setting but the secrets, whose presence alone is shown. Settings viewed `whenSet` appear
 * only when they say something: not the default, not an empty list or map.
 */
function view(provider: ResolvedProvider): Record<string, unknown> {
  const out: Record<string, unknown> = { name: provider.name };
  for (const [key, setting] of SETTING_ENTRIES) {
    const value: unknown = provider[key];
    if (setting.secret) out[viewName(setting)] = value !== undefined;
    else if (setting.view !== 'whenSet') out[setting.wire] = value ?? null;
    else if (saysSomething(value, setting.default)) out[setting.wire] = value;
  }
  return out;
}

function saysSomething(value: unknown, fallback: unknown): boolean {
  if (value === undefined || value === fallback) return false;
  if (Array.isArray(value)) return value.length > 0;
  return typeof value !== 'object' || value === null || Object.keys(value).length > 0;
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

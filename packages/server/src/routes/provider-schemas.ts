// The provider routes' bodies and views, each read from core's settings table: a new setting
// appears in PUT, PATCH and the view without a line here.
import {
  PRESET_NAMES,
  PROBE_VERDICTS,
  PROVIDER_PRESETS,
  SETTING_ENTRIES,
  type JsonSchema,
  type ProviderListing,
  type Setting,
  type SettingName,
} from '@tokenwarden/core';
import { closedObject } from '../http/schemas.ts';

/** `preset: "oidc"`: no catalog entry, the settings come from the issuer's metadata. */
export const DISCOVERY_PRESET = 'oidc';

/** What the HTTP API adds to a setting's doc line: what only this API does with it. */
const API_NOTES: Partial<Record<SettingName, string>> = {
  preset: 'See GET /v1/presets; "oidc" discovers the settings from `issuer` at this call.',
  issuer: 'With preset "oidc", where the metadata is discovered (OpenID Connect Discovery).',
  introspectionUrl: 'Used by POST /v1/connections/{id}/introspect.',
  clientSecret:
    'null drops a stored secret; a PUT that leaves it out while one is stored is refused.',
};

/** Each setting's input schema under its wire name, with the API's notes. */
function settingSchema(name: SettingName, setting: Setting<unknown>): Record<string, unknown> {
  const note = API_NOTES[name];
  const schema: Record<string, unknown> = {
    ...setting.schema,
    description: note === undefined ? setting.doc : `${setting.doc} ${note}`,
  };
  if (name === 'preset') schema.enum = [...PRESET_NAMES, DISCOVERY_PRESET];
  return schema;
}

/**
 * `schema`, also accepting null (an enum must list it too); with `members`, an object's members
 * too, as a merge patch removes a member with null.
 */
function nullable(schema: Record<string, unknown>, members = false): Record<string, unknown> {
  const out: Record<string, unknown> = { ...schema, type: [schema.type, 'null'] };
  if (Array.isArray(schema.enum)) out.enum = [...(schema.enum as unknown[]), null];
  if (members && typeof schema.additionalProperties === 'object') {
    out.additionalProperties = nullable(schema.additionalProperties as Record<string, unknown>);
  }
  return out;
}

/** A PUT body: every setting; a secret may be null, to drop the stored one on purpose. */
export const providerBody = closedObject(
  Object.fromEntries(
    SETTING_ENTRIES.map(([name, setting]) => {
      const schema = settingSchema(name, setting);
      return [setting.wire, setting.secret ? nullable(schema) : schema];
    }),
  ),
  SETTING_ENTRIES.filter(([, s]) => s.required === 'given').map(([, s]) => s.wire),
);

/**
 * A PATCH body (RFC 7396 JSON merge patch): any settings, null removing one; a setting every
 * provider must be given cannot be removed.
 */
export const providerPatchBody = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: Object.fromEntries(
    SETTING_ENTRIES.map(([name, setting]) => {
      const schema = settingSchema(name, setting);
      return [setting.wire, setting.required === 'given' ? schema : nullable(schema, true)];
    }),
  ),
} as const;

/**
 * The view of each setting: its type without the input's bounds, nullable when it is always
 * shown but may be unset; a secret only as `has_<wire>`.
 */
export const providerView = {
  type: 'object',
  additionalProperties: false,
  required: [
    'name',
    ...SETTING_ENTRIES.filter(([, s]) => s.view === 'required').map(([, s]) => viewName(s)),
  ],
  properties: {
    name: { type: 'string' },
    ...Object.fromEntries(SETTING_ENTRIES.map(([, s]) => [viewName(s), viewSchema(s)])),
    problem: {
      type: 'string',
      description:
        'Only on a provider stored by an older version with a setting this one refuses (user ' +
        'info in a URL, say): what to correct. Shown without the refused value; its ' +
        'connections answer provider_misconfigured until it is corrected.',
    },
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
  if (type === 'array') {
    // The item's type only: the view shows what is stored, its bounds were checked on the way in.
    const item = (setting.schema.items as { type?: string } | undefined)?.type ?? 'string';
    return { type, items: { type: item }, description };
  }
  if (type === 'object') return { type, additionalProperties: { type: 'string' }, description };
  const nullable = setting.view === 'always' && setting.default === undefined;
  return { type: nullable ? [type, 'null'] : type, description };
}

/**
 * Every setting but the secrets, whose presence alone is shown. Settings viewed `whenSet` appear
 * only when they say something: not the default, not an empty list or map.
 */
export function view(provider: ProviderListing): Record<string, unknown> {
  const out: Record<string, unknown> = { name: provider.name };
  if (provider.problem !== undefined) out.problem = provider.problem;
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

/** What POST /v1/providers/{name}/test answers: core's `ProbeResult`, with where it went. */
export const probeView = closedObject(
  {
    name: { type: 'string' },
    token_url: { type: 'string' },
    verdict: {
      type: 'string',
      enum: PROBE_VERDICTS,
      description:
        'accepted: reachable, and the client credentials were taken; client_rejected: reachable, ' +
        'the credentials were refused (invalid_client, 401); unreachable: no answer, a 5xx or a ' +
        '429; unexpected: an answer that says neither.',
    },
    code: {
      type: 'string',
      description:
        "The provider's error code (invalid_grant when accepted), or network_error, timeout, " +
        'server_error, rate_limited, http_<status>, tokens_issued.',
    },
    message: { type: 'string', description: 'The verdict in plain words.' },
  },
  ['name', 'token_url', 'verdict', 'code', 'message'],
);

export const presetView = closedObject(
  {
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
  ['name', 'params'],
);

/** A preset as GET /v1/presets (and `tokenwarden presets`) shows it. */
export interface PresetListing {
  name: string;
  token_url: string | null;
  authorize_url: string | null;
  revocation_url: string | null;
  introspection_url: string | null;
  params: Record<string, string | null>;
  notes: string | null;
}

/** The catalog, and "oidc": every preset PUT /v1/providers/{name} accepts. */
export function presetListings(): PresetListing[] {
  return [
    ...PRESET_NAMES.map(presetListing),
    {
      name: DISCOVERY_PRESET,
      token_url: null,
      authorize_url: null,
      revocation_url: null,
      introspection_url: null,
      params: {},
      notes: 'Any OpenID Connect issuer: give `issuer`; its metadata is discovered at PUT.',
    },
  ];
}

/** A catalog entry: where it points and what it needs. */
function presetListing(name: string): PresetListing {
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

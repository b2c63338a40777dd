// From a request body to core's provider configuration: a PUT's body as it is, a PATCH's merged
// over the stored settings first. Both pass the same checks.
import { discoverProvider, SETTING_ENTRIES, type ProviderConfig } from '@tokenwarden/core';
import { InvalidRequestError } from '../errors.ts';
import type { ServerContext } from '../http/context.ts';
import { DISCOVERY_PRESET } from './provider-schemas.ts';

/** A PUT body: each setting of core's table under its wire name. */
export type ProviderBody = Record<string, unknown> & {
  preset?: string;
  preset_params?: Record<string, string>;
  issuer?: string;
  token_url?: string;
};

/** A stored configuration as the body of a PUT that would store it again. */
export function settingsAsBody(config: ProviderConfig): ProviderBody {
  const body: ProviderBody = {};
  for (const [key, setting] of SETTING_ENTRIES) {
    if (config[key] !== undefined) body[setting.wire] = config[key];
  }
  return body;
}

/**
 * RFC 7396 JSON merge patch: `patch`'s members replace `target`'s, null removes one, objects
 * (`preset_params`, `authorize_params`) are merged member by member, lists are replaced.
 */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return patch;
  const merged: Record<string, unknown> = isObject(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete merged[key];
    else merged[key] = mergePatch(merged[key], value);
  }
  return merged;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The core configuration of a body. A catalog preset is passed on by name (core fills in its
 * settings under the ones given, and keeps following the catalog); "oidc" is discovered here,
 * once, and its endpoints are stored like settings given by hand. A null setting is none.
 */
export async function providerConfig(
  ctx: ServerContext,
  name: string,
  body: ProviderBody,
): Promise<ProviderConfig> {
  const settings: Record<string, unknown> = { name };
  for (const [key, setting] of SETTING_ENTRIES) settings[key] = body[setting.wire] ?? undefined;
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

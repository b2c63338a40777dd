import { InvalidInputError } from '../errors.ts';
import { applyPreset } from './catalog.ts';
import {
  SETTING_ENTRIES,
  type ProviderConfig,
  type ResolvedProvider,
  type SettingName,
} from './settings.ts';

/** What a provider name may look like: it appears in URLs, and '*' is a grant's wildcard. */
export const PROVIDER_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** What the caller named, not what the preset filled in: a stored provider follows the catalog. */
const AS_GIVEN: readonly SettingName[] = ['preset', 'presetParams'];

/**
 * Fills in defaults (the preset's first, when one is named) and refuses configurations that
 * cannot work: each setting is read by its kind in `PROVIDER_SETTINGS`. Throws
 * InvalidInputError naming the field by its wire name.
 */
export function resolveProvider(input: ProviderConfig): ResolvedProvider {
  if (typeof input !== 'object' || input === null) {
    throw new InvalidInputError('provider', 'must be an object');
  }
  const config = input.preset === undefined ? input : applyPreset(input);
  if (typeof config.name !== 'string' || !PROVIDER_NAME_PATTERN.test(config.name)) {
    throw new InvalidInputError(
      'name',
      'must be 1-64 characters of A-Z, a-z, 0-9, _, . or -, starting with a letter or digit',
    );
  }
  const resolved: Record<string, unknown> = { name: config.name };
  for (const [name, setting] of SETTING_ENTRIES) {
    const given = (AS_GIVEN.includes(name) ? input : config)[name];
    const value = setting.read(given, setting.wire) ?? copy(setting.default);
    if (value === undefined && setting.required !== undefined) {
      throw new InvalidInputError(setting.wire, 'is required');
    }
    resolved[name] = value;
  }
  return resolved as ResolvedProvider;
}

/**
 * What a provider must have before it is kept (`ProviderRegistry.define`, `put`): every client
 * authentication method Tokenwarden speaks sends a client secret, so without one every request
 * would fail before it left — found now, not at each connection's first refresh. Not checked
 * when a stored provider is read: one stored before this rule is still listed (its requests
 * fail as `provider_misconfigured`, never in doubt). Throws InvalidInputError.
 */
export function checkUsable(provider: ResolvedProvider): void {
  if (provider.clientSecret === undefined) {
    throw new InvalidInputError(
      'client_secret',
      `is required for client_auth ${provider.clientAuth}`,
    );
  }
}

/** Defaults are shared by every provider: each gets its own list or map. */
function copy(value: unknown): unknown {
  if (Array.isArray(value)) return [...(value as unknown[])];
  if (typeof value === 'object' && value !== null) return { ...value };
  return value;
}

/**
 * Invariant 6: may a leader that finds a stale intent send the same refresh token again?
 * Only if a second presentation cannot cost the token family: the provider does not rotate, or
 * does not punish reuse, or the first send is still inside its grace window (with a margin for
 * the request's own travel time).
 */
export function replayIsSafe(provider: ResolvedProvider, intentAt: number, now: number): boolean {
  if (!provider.rotatesRefreshTokens || !provider.reuseDetection) return true;
  const graceMs = provider.reuseGraceSeconds * 1000;
  return now - intentAt + provider.requestTimeoutMs < graceMs;
}

import { performance } from 'node:perf_hooks';
import { openProviderSecret, sealProviderSecret, type KeyRing } from '../crypto/index.ts';
import { checkUsable, PROVIDER_NAME_PATTERN, resolveProvider } from './resolve.ts';
import { SETTING_ENTRIES, type ProviderConfig, type ResolvedProvider } from './settings.ts';
import { InvalidInputError, ProviderMisconfiguredError } from '../errors.ts';
import { guardStore } from '../store/guard-store.ts';
import type { ServiceStore, StoredProviderRecord } from '../store/service-store.ts';

export interface ProviderRegistryOptions {
  keyRing: KeyRing;
  /** Where providers configured at run time live, shared by every replica. */
  store?: ServiceStore;
  /**
   * How long a provider read from the store is used before it is read again: a change made by
   * another replica is seen within this long. Default 5 s.
   */
  cacheMs?: number;
}

/**
 * The settings kept in a provider row's `config` column: every one but the secrets, which are
 * sealed in their own column.
 */
const STORED_SETTINGS = SETTING_ENTRIES.filter(([, setting]) => !setting.secret).map(
  ([name]) => name,
);

interface CacheEntry {
  /** A promise, so that concurrent lookups of one name share one read. */
  provider: Promise<ResolvedProvider | undefined>;
  /** `performance.now()` after which the store is asked again; Infinity for `define`d ones. */
  until: number;
}

/**
 * The providers a broker knows: those configured in code (`define`) and, with a store, those
 * configured at run time (`put`), shared by every replica through the database with their client
 * secrets sealed. Lookups are served from memory and re-read from the store every `cacheMs`.
 *
 * A provider defined in code stays in use in this process until `put` replaces it.
 */
export class ProviderRegistry {
  readonly #keyRing: KeyRing;
  readonly #store: ServiceStore | undefined;
  readonly #cacheMs: number;
  readonly #cache = new Map<string, CacheEntry>();
  /** The configurations `define`d in code, as given: what `configOf` answers for them. */
  readonly #defined = new Map<string, ProviderConfig>();

  constructor(options: ProviderRegistryOptions) {
    this.#keyRing = options.keyRing;
    // Database failures surface as the typed, retryable `store_unavailable`.
    this.#store = options.store && guardStore(options.store);
    this.#cacheMs = options.cacheMs ?? 5_000;
  }

  /** Configures a provider in this process only, synchronously. Throws InvalidInputError. */
  define(config: ProviderConfig): ResolvedProvider {
    const provider = resolveProvider(config);
    checkUsable(provider);
    this.#cache.set(provider.name, { provider: Promise.resolve(provider), until: Infinity });
    this.#defined.set(provider.name, { ...config });
    return provider;
  }

  /**
   * Validates the configuration, seals its client secret (bound to the provider's name), stores
   * it for every replica if there is a store, and uses it here at once. Without a store it is
   * the same as `define`. Throws InvalidInputError, and then changes nothing.
   */
  async put(config: ProviderConfig): Promise<ResolvedProvider> {
    const provider = resolveProvider(config);
    checkUsable(provider);
    if (!this.#store) return this.define(config);
    await this.#store.putProvider({
      name: provider.name,
      config: JSON.stringify(storedSettings(config)),
      clientSecret:
        provider.clientSecret === undefined
          ? null
          : sealProviderSecret(this.#keyRing, provider.clientSecret, provider.name),
    });
    this.#defined.delete(provider.name);
    this.#remember(provider.name, Promise.resolve(provider));
    return provider;
  }

  /**
   * Forgets a stored provider, here at once and in other replicas within `cacheMs`. False when
   * there was none; a provider defined in code cannot be deleted (InvalidInputError).
   */
  async delete(name: string): Promise<boolean> {
    if (this.#defined.has(name)) {
      throw new InvalidInputError('name', `provider ${name} is configured in code, not stored`);
    }
    if (!this.#store) return false;
    const deleted = await this.#store.deleteProvider(name);
    this.#cache.delete(name);
    return deleted;
  }

  /**
   * The configuration of provider `name` as it was given (a preset by name, not its settings
   * filled in), secrets opened; undefined when there is none. Read from the store, not the
   * cache: a partial update merges over the latest. Throws as `get` does.
   */
  async configOf(name: string): Promise<ProviderConfig | undefined> {
    const defined = this.#defined.get(name);
    if (defined) return { ...defined };
    if (!this.#store || typeof name !== 'string' || !PROVIDER_NAME_PATTERN.test(name)) {
      return undefined;
    }
    const row = await this.#store.getProvider(name);
    return row && this.#given(row);
  }

  /**
   * The provider named `name`, or undefined. Throws DecryptError if its stored client secret
   * does not open (a missing key, or a secret copied from another provider's row), and
   * StoreUnavailableError if the database cannot be reached.
   */
  async get(name: string): Promise<ResolvedProvider | undefined> {
    const entry = this.#cache.get(name);
    if (entry && entry.until > performance.now()) return entry.provider;
    if (!this.#store || typeof name !== 'string' || !PROVIDER_NAME_PATTERN.test(name)) {
      return undefined;
    }
    const store = this.#store;
    const provider = store.getProvider(name).then((row) => row && this.#open(row));
    this.#remember(name, provider);
    return provider;
  }

  /**
   * Every provider, ordered by name; read from the store (not the cache) when there is one. A
   * stored provider this version refuses is listed too, with its `problem` and with any user
   * info taken out of its URLs, so that one bad row does not hide the others.
   */
  async list(): Promise<ProviderListing[]> {
    const byName = new Map<string, ProviderListing>();
    if (this.#store) {
      for (const row of await this.#store.listProviders()) {
        if (this.#cache.get(row.name)?.until === Infinity) continue; // defined in code
        try {
          const provider = this.#open(row);
          this.#remember(row.name, Promise.resolve(provider));
          byName.set(row.name, provider);
        } catch (error) {
          if (!(error instanceof ProviderMisconfiguredError)) throw error;
          byName.set(row.name, this.#withProblem(row, error.problem));
        }
      }
    }
    for (const [name, entry] of this.#cache) {
      if (entry.until !== Infinity) continue;
      const provider = await entry.provider;
      if (provider) byName.set(name, provider);
    }
    return [...byName.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  #remember(name: string, provider: Promise<ResolvedProvider | undefined>): void {
    this.#cache.set(name, { provider, until: performance.now() + this.#cacheMs });
    // Only a provider that exists is kept (concurrent lookups still share the read): an unknown
    // name or a failed read is asked again next time, and the cache never holds more entries
    // than there are providers, whatever names callers make up.
    const forget = () => {
      if (this.#cache.get(name)?.provider === provider) this.#cache.delete(name);
    };
    provider.then((found) => {
      if (!found) forget();
    }, forget);
  }

  /** Throws ProviderMisconfiguredError for a row an older version stored with a setting refused now. */
  #open(row: StoredProviderRecord): ResolvedProvider {
    try {
      return resolveProvider(this.#given(row));
    } catch (error) {
      if (error instanceof InvalidInputError)
        throw new ProviderMisconfiguredError(row.name, error.message);
      throw error;
    }
  }

  /**
   * A refused row as listed: its settings with user info dropped from every URL (the known way an
   * older version's row fails today), or, if they still do not resolve, only its name.
   */
  #withProblem(row: StoredProviderRecord, problem: string): ProviderListing {
    const given = this.#given(row);
    const cleaned = Object.fromEntries(
      Object.entries(given).map(([key, value]) => [key, withoutUserInfo(value)]),
    ) as unknown as ProviderConfig;
    try {
      return { ...resolveProvider(cleaned), problem };
    } catch {
      return { name: row.name, problem } as ProviderListing;
    }
  }

  #given(row: StoredProviderRecord): ProviderConfig {
    const settings = JSON.parse(row.config) as Omit<ProviderConfig, 'name' | 'clientSecret'>;
    return {
      ...settings,
      name: row.name,
      clientSecret:
        row.clientSecret === null
          ? undefined
          : openProviderSecret(this.#keyRing, row.clientSecret, row.name),
    };
  }
}

/** A provider as listed: `problem` says why a stored one cannot be used until corrected. */
export type ProviderListing = ResolvedProvider & { problem?: string };

function withoutUserInfo(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutUserInfo);
  if (typeof value !== 'string' || !URL.canParse(value)) return value;
  const url = new URL(value);
  if (url.username === '' && url.password === '') return value;
  url.username = '';
  url.password = '';
  return url.href;
}

/**
 * The settings to store, picked by name: whatever else the caller's object carries (a
 * mis-spelt `client_secret`, say) never reaches the database.
 */
function storedSettings(config: ProviderConfig): Partial<ProviderConfig> {
  const settings: Record<string, unknown> = {};
  for (const key of STORED_SETTINGS) {
    if (config[key] !== undefined) settings[key] = config[key];
  }
  return settings;
}

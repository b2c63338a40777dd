// Drives a TestProvider that runs in another process through its /__admin endpoints.
import type {
  GrantOptions,
  InjectedFailure,
  IssuedGrant,
  ProviderStats,
  TestProviderOptions,
} from './types.ts';

export class RemoteTestProvider {
  readonly url: string;
  readonly tokenUrl: string;
  readonly authorizeUrl: string;
  readonly revocationUrl: string;
  readonly introspectionUrl: string;

  constructor(url: string) {
    this.url = url.replace(/\/+$/, '');
    this.tokenUrl = `${this.url}/token`;
    this.authorizeUrl = `${this.url}/authorize`;
    this.revocationUrl = `${this.url}/revoke`;
    this.introspectionUrl = `${this.url}/introspect`;
  }

  async configure(patch: Partial<TestProviderOptions>): Promise<void> {
    await this.#call('POST', '/configure', patch);
  }

  issueGrant(opts: GrantOptions = {}): Promise<IssuedGrant> {
    return this.#call('POST', '/grant', opts) as Promise<IssuedGrant>;
  }

  async injectFailures(...failures: InjectedFailure[]): Promise<void> {
    await this.#call('POST', '/failures', failures);
  }

  stats(): Promise<ProviderStats> {
    return this.#call('GET', '/stats') as Promise<ProviderStats>;
  }

  async reset(): Promise<void> {
    await this.#call('POST', '/reset');
  }

  /** See TestProvider.expireAccessTokens. */
  async expireAccessTokens(): Promise<number> {
    const { expired } = (await this.#call('POST', '/expire-access-tokens')) as { expired: number };
    return expired;
  }

  async #call(method: 'GET' | 'POST', action: string, body?: unknown): Promise<unknown> {
    const res = await fetch(`${this.url}/__admin${action}`, {
      method,
      headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
    const payload = (await res.json()) as { error_description?: string };
    if (!res.ok) {
      // Admin errors describe the bad input (never a token), so they are safe to surface.
      const reason = payload.error_description ?? `HTTP ${res.status}`;
      throw new Error(`test provider admin ${action} failed: ${reason}`);
    }
    return payload;
  }
}

// Issue 14, defect 1: a request that never left cannot have spent a refresh token. A provider
// that cannot work is refused when it is configured, and one stored before that rule fails its
// requests as `provider_misconfigured`: never in doubt, the credential stays active, no intent is
// left behind.
import {
  CredentialBroker,
  InvalidInputError,
  ProviderRegistry,
  RefreshUnavailableError,
  type BrokerEvent,
} from '@tokenwarden/core';
import { afterEach, describe, expect, it } from 'vitest';
import { scenario, type Scenario } from './helpers.ts';

let s: Scenario;
afterEach(async () => {
  await s?.cleanup();
});

describe('a provider that cannot work is refused when it is configured', () => {
  it('without a client secret, for every client authentication method', async () => {
    s = await scenario();
    const registry = new ProviderRegistry({ keyRing: s.keyRing, store: s.store.service });
    for (const clientAuth of ['client_secret_basic', 'client_secret_post', 'client_secret_json']) {
      const config = {
        name: 'nosecret',
        tokenUrl: s.provider.tokenUrl,
        clientId: 'c',
        clientAuth: clientAuth as 'client_secret_basic',
      };
      for (const attempt of [() => registry.put(config), async () => registry.define(config)]) {
        const error = (await attempt().catch((e: unknown) => e)) as InvalidInputError;
        expect(error).toBeInstanceOf(InvalidInputError);
        expect(error.field).toBe('client_secret');
        expect(error.message).toContain(clientAuth);
      }
    }
    expect(await s.store.service.getProvider('nosecret')).toBeUndefined();
  });

  it.each(['token_url', 'revocation_url', 'introspection_url', 'authorize_url'])(
    'with user info in %s, never echoed',
    async (field) => {
      s = await scenario();
      const key = field.replace(/_(\w)/g, (_, c: string) => c.toUpperCase());
      const url = s.provider.tokenUrl.replace('http://', 'http://admin:hunter2@');
      const error = (await s.broker.providers
        .put({ ...s.fixture.provider, name: 'userinfo', [key]: url })
        .catch((e: unknown) => e)) as InvalidInputError;
      expect(error).toBeInstanceOf(InvalidInputError);
      expect(error.field).toBe(field);
      expect(error.message).not.toContain('hunter2');
    },
  );
});

describe('a request that never left is not in doubt', () => {
  /** A broker that reads its providers from the scenario's database, as a server does. */
  function storedBroker(events: BrokerEvent[]): CredentialBroker {
    return new CredentialBroker({
      store: s.store,
      keyRing: s.keyRing,
      providerStore: s.store.service,
      maxWaitMs: 100,
      backoff: { baseMs: 1, maxMs: 5 },
      onEvent: (event) => events.push(event),
    });
  }

  async function importExpired(broker: CredentialBroker, provider: string): Promise<string> {
    const grant = s.provider.issueGrant();
    const info = await broker.importConnection({
      provider,
      owner: 'u',
      accessToken: grant.access_token,
      refreshToken: grant.refresh_token,
      expiresIn: 0,
    });
    return info.id;
  }

  async function expectNotInDoubt(broker: CredentialBroker, id: string, events: BrokerEvent[]) {
    for (let attempt = 0; attempt < 3; attempt++) {
      const error = (await broker.getAccessToken(id).catch((e: unknown) => e)) as
        RefreshUnavailableError | undefined;
      expect(error).toBeInstanceOf(RefreshUnavailableError);
      expect(error!.lastError).toBe('provider_misconfigured');
      await new Promise((resolve) => setTimeout(resolve, 10)); // past the backoff
    }
    expect(events.filter((e) => e.type === 'refresh_failed')).not.toHaveLength(0);
    expect(events.every((e) => e.type === 'refresh_failed' && !e.inDoubt)).toBe(true);
    expect((await broker.getConnection(id)).status).toBe('active');
    const row = s.sql
      .prepare('select intent_hash, intent_attempts from credentials where id = ?')
      .get(id);
    expect(row).toEqual({ intent_hash: null, intent_attempts: 0 });
    expect(s.provider.stats().tokenRequests).toBe(0);
  }

  it('a provider stored without a client secret (before the rule): refresh and introspection', async () => {
    s = await scenario();
    await s.store.service.putProvider({
      name: 'legacy',
      config: JSON.stringify({
        tokenUrl: s.provider.tokenUrl,
        introspectionUrl: s.provider.introspectionUrl,
        clientId: s.provider.clientId,
      }),
      clientSecret: null,
    });
    const events: BrokerEvent[] = [];
    const broker = storedBroker(events);
    const id = await importExpired(broker, 'legacy');
    await expectNotInDoubt(broker, id, events);
    expect(await broker.introspect(id)).toEqual({
      kind: 'failed',
      error: 'provider_misconfigured',
      retryAfterMs: undefined,
    });
    expect(s.provider.stats().introspections).toBe(0);
  });
});

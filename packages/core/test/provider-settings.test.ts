// The provider settings table (provider/settings.ts) and the setting added through it,
// api_base_urls: how it is checked, which presets fill it in, and that it is stored.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  InvalidInputError,
  KeyRing,
  openSqliteStore,
  PROVIDER_SETTINGS,
  ProviderRegistry,
  resolvePreset,
  resolveProvider,
  SETTING_ENTRIES,
  type ProviderConfig,
} from '@tokenwarden/core';
import { describe, expect, it } from 'vitest';
import { classifyError } from '../src/oauth/token-endpoint.ts';

const base: ProviderConfig = {
  name: 'acme',
  tokenUrl: 'https://acme.example/oauth/token',
  clientId: 'acme-client',
};

function refusal(apiBaseUrls: unknown): InvalidInputError {
  try {
    resolveProvider({ ...base, apiBaseUrls } as ProviderConfig);
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidInputError);
    return error as InvalidInputError;
  }
  throw new Error(`accepted ${JSON.stringify(apiBaseUrls)}`);
}

describe('the provider settings table', () => {
  it('names each setting on the wire in snake_case, with a doc line, once', () => {
    const wires = SETTING_ENTRIES.map(([, setting]) => setting.wire);
    for (const [name, setting] of SETTING_ENTRIES) {
      expect(setting.wire, name).toBe(name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`));
      expect(setting.doc.length, name).toBeGreaterThan(10);
      expect(setting.doc, name).not.toContain('\n');
    }
    expect(new Set(wires).size).toBe(wires.length);
  });

  it('fills in every default, and nothing else, for a provider given only what it must', () => {
    const resolved = resolveProvider(base) as unknown as Record<string, unknown>;
    for (const [name, setting] of SETTING_ENTRIES) {
      if (name === 'tokenUrl' || name === 'clientId') continue;
      expect(resolved[name], name).toEqual(setting.default);
    }
  });

  it('gives each provider its own copy of a default list', () => {
    const one = resolveProvider(base);
    one.apiBaseUrls.push('https://x.example');
    expect(resolveProvider(base).apiBaseUrls).toEqual([]);
    expect(PROVIDER_SETTINGS.apiBaseUrls.default).toEqual([]);
  });
});

describe('api_base_urls', () => {
  it('keeps https origins and path prefixes, spelt one way, without duplicates', () => {
    const { apiBaseUrls } = resolveProvider({
      ...base,
      apiBaseUrls: [
        'https://api.acme.example',
        'https://api.acme.example/',
        'https://files.acme.example/v2/',
        'HTTPS://Files.Acme.Example/v2',
        'http://127.0.0.1:8080/api',
        'http://localhost:3000',
      ],
    });
    expect(apiBaseUrls).toEqual([
      'https://api.acme.example',
      'https://files.acme.example/v2',
      'http://127.0.0.1:8080/api',
      'http://localhost:3000',
    ]);
  });

  it.each([
    ['plain http off loopback', ['http://api.acme.example']],
    ['user info', ['https://user:pass@api.acme.example']],
    ['a user name alone', ['https://user@api.acme.example']],
    ['a query', ['https://api.acme.example/v1?key=1']],
    ['a fragment', ['https://api.acme.example/#x']],
    ['not a URL', ['api.acme.example']],
    ['another scheme', ['ftp://api.acme.example']],
    ['not a list', 'https://api.acme.example'],
    ['a number in the list', [42]],
    ['more than 20', Array.from({ length: 21 }, (_, i) => `https://api${i}.acme.example`)],
  ])('refuses %s with invalid_input on api_base_urls', (_, value) => {
    const error = refusal(value);
    expect(error.code).toBe('invalid_input');
    expect(error.field).toBe('api_base_urls');
    expect(error.message.startsWith('api_base_urls: ')).toBe(true);
  });

  it('is filled in by the presets that know their API, and left to the instance otherwise', () => {
    const preset = (name: string, presetParams?: Record<string, string>) =>
      resolveProvider(resolvePreset(name, { name: 'p', clientId: 'c', presetParams })).apiBaseUrls;
    expect(preset('slack')).toEqual(['https://slack.com/api']);
    expect(preset('github')).toEqual(['https://api.github.com', 'https://uploads.github.com']);
    expect(preset('google')?.[0]).toBe('https://www.googleapis.com');
    expect(preset('google')).toContain('https://gmail.googleapis.com');
    expect(preset('salesforce')).toEqual([]);
    expect(preset('okta', { domain: 'acme.okta.com' })).toEqual([]);
    // A setting given overrides the preset's.
    expect(
      resolveProvider(
        resolvePreset('slack', {
          name: 'p',
          clientId: 'c',
          apiBaseUrls: ['https://proxy.example'],
        }),
      ).apiBaseUrls,
    ).toEqual(['https://proxy.example']);
  });

  it('is stored, and read back by another replica', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tw-settings-'));
    const store = openSqliteStore({ path: join(dir, 'tw.sqlite') });
    try {
      await store.migrate();
      const keyRing = KeyRing.generate('k1');
      const apiBaseUrls = ['https://api.acme.example/v1'];
      await new ProviderRegistry({ keyRing, store: store.service }).put({
        ...base,
        clientSecret: 'acme-secret',
        apiBaseUrls,
      });
      const replica = new ProviderRegistry({ keyRing, store: store.service });
      expect((await replica.get('acme'))?.apiBaseUrls).toEqual(apiBaseUrls);
      expect(JSON.parse((await store.service.getProvider('acme'))!.config)).toMatchObject({
        apiBaseUrls,
      });
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('refusal codes', () => {
  it("are RFC 6749's invalid_grant in the protocol, a provider's own only from its settings", () => {
    const generic = resolveProvider(base);
    expect(classifyError(generic, 'invalid_grant', undefined).kind).toBe('refused');
    for (const code of ['bad_refresh_token', 'invalid_refresh_token', 'token_revoked']) {
      expect(classifyError(generic, code, undefined).kind, code).toBe('failed');
    }
    const github = resolveProvider(resolvePreset('github', { name: 'gh', clientId: 'c' }));
    expect(classifyError(github, 'bad_refresh_token', undefined).kind).toBe('refused');
    const slack = resolveProvider(resolvePreset('slack', { name: 'sl', clientId: 'c' }));
    expect(classifyError(slack, 'invalid_refresh_token', undefined).kind).toBe('refused');
    expect(classifyError(slack, 'token_revoked', undefined).kind).toBe('refused');
  });
});

describe('what presets know about replays (invariant 6)', () => {
  const preset = (name: string) =>
    resolveProvider(
      resolvePreset(name, {
        name: 'p',
        clientId: 'c',
        clientSecret: 's',
        presetParams: ['okta', 'auth0'].includes(name) ? { domain: 'acme.example' } : undefined,
      }),
    );

  it('carries the grace windows the catalog knows', () => {
    expect(preset('xero').reuseGraceSeconds).toBe(1800);
    expect(preset('atlassian').reuseGraceSeconds).toBe(600);
    expect(preset('okta').reuseGraceSeconds).toBe(30);
    expect(preset('auth0').reuseGraceSeconds).toBe(0); // no leeway unless configured
  });

  it('marks Salesforce, whose replay revokes every grant, and no other', () => {
    expect(preset('salesforce').reuseRevokesAllGrants).toBe(true);
    expect(preset('auth0').reuseRevokesAllGrants).toBeUndefined();
    expect(resolveProvider({ ...base, clientSecret: 's' }).reuseRevokesAllGrants).toBeUndefined();
  });
});

import { inspect } from 'node:util';
import {
  InvalidInputError,
  NotFoundError,
  openField,
  RefreshUnavailableError,
  TokenwardenError,
  UnknownProviderError,
  type ImportCredentialInput,
} from '@tokenwarden/core';
import { afterEach, describe, expect, it } from 'vitest';
import { openBroker } from '@tokenwarden/testkit';
import { scenario, type Scenario } from './helpers.ts';

let s: Scenario;
afterEach(async () => {
  await s?.cleanup();
});

const SECRET_ACCESS = 'at-SECRET-xyz';
const SECRET_REFRESH = 'rt-SECRET-xyz';
const YEAR_S = 365 * 24 * 3600;
const MAX_LIFETIME_S = 10 * YEAR_S;

/** Every column of every row, in a stable order: "changes nothing stored" means this is equal. */
function dump(): unknown[] {
  return s.sql.prepare('select * from credentials order by id').all();
}

/**
 * The outcome of a call, whether the broker rejects or (wrongly, see the dedicated test below)
 * throws synchronously: either way the caller must get the right typed error.
 */
async function failure(call: () => Promise<unknown>): Promise<unknown> {
  try {
    await call();
  } catch (error) {
    return error;
  }
  throw new Error('expected the call to fail, but it succeeded');
}

/** A typed Tokenwarden error with this class and code, whose text reveals no secret. */
function expectTyped(
  error: unknown,
  type: abstract new (...args: never[]) => TokenwardenError,
  code: string,
): void {
  expect(error).toBeInstanceOf(type);
  expect(error).toBeInstanceOf(TokenwardenError);
  expect((error as TokenwardenError).code).toBe(code);
  expectNoSecret(error);
}

function expectNoSecret(error: unknown): void {
  const e = error as Error;
  for (const text of [String(e), e.message, e.stack ?? '', inspect(e), JSON.stringify(e)]) {
    expect(text).not.toContain(SECRET_ACCESS);
    expect(text).not.toContain(SECRET_REFRESH);
    expect(text).not.toContain('SECRET');
  }
}

/** A scenario with a few stored connections, so that "nothing changed" compares real rows. */
async function seeded(): Promise<{ expiredId: string; validId: string; before: unknown[] }> {
  s = await scenario();
  const { id: expiredId } = await s.importGrant({ expiresIn: 0 });
  const { id: validId } = await s.importGrant({ expiresIn: 3600 });
  const before = dump();
  expect(before).toHaveLength(2);
  return { expiredId, validId, before };
}

function expectNothingChanged(before: unknown[]): void {
  expect(dump()).toEqual(before);
  expect(s.provider.stats().tokenRequests).toBe(0);
}

const BAD_IDS: [string, unknown][] = [
  ['a parent path', '../x'],
  ['a slash', 'a/b'],
  ['empty', ''],
  ['65 characters', 'x'.repeat(65)],
  ['a NUL byte', 'conn_\u0000'],
  ['a space', 'conn x'],
  ['a number', 42],
  ['null', null],
  ['undefined', undefined],
  ['an object', { id: 'conn_x' }],
];

type IdCall = (id: unknown) => Promise<unknown>;
const ID_CALLS: [string, IdCall][] = [
  ['getAccessToken', (id) => s.broker.getAccessToken(id as string)],
  ['reportRejected', (id) => s.broker.reportRejected(id as string, 1)],
  ['getConnection', (id) => s.broker.getConnection(id as string)],
  ['deleteCredential', (id) => s.broker.deleteCredential(id as string)],
];

describe('connection ids', () => {
  it.each(ID_CALLS)('%s: an unknown id is not_found and changes nothing', async (_name, call) => {
    const { before } = await seeded();
    for (const id of ['conn_doesnotexist', 'x'.repeat(64)]) {
      const error = await failure(() => call(id));
      expectTyped(error, NotFoundError, 'not_found');
      expect((error as NotFoundError).connectionId).toBe(id);
      expect((error as NotFoundError).status).toBe(404);
    }
    expectNothingChanged(before);
  });

  it.each(ID_CALLS)(
    '%s: a malformed id is invalid_input and changes nothing',
    async (_name, call) => {
      const { before } = await seeded();
      for (const [label, id] of BAD_IDS) {
        const error = await failure(() => call(id));
        expect(error, label).toBeInstanceOf(InvalidInputError);
        expectTyped(error, InvalidInputError, 'invalid_input');
        expect((error as InvalidInputError).field, label).toBe('connection_id');
        expect((error as InvalidInputError).status).toBe(400);
      }
      expectNothingChanged(before);
    },
  );

  it.each(ID_CALLS)(
    '%s: a malformed id gives a rejected promise, never a synchronous throw',
    async (_name, call) => {
      await seeded();
      for (const [label, id] of BAD_IDS) {
        let promise: Promise<unknown> | undefined;
        // Regression: a bad id once threw synchronously, past `getAccessToken(id).catch(...)`.
        expect(() => {
          promise = call(id);
        }, label).not.toThrow();
        await expect(promise, label).rejects.toBeInstanceOf(InvalidInputError);
      }
    },
  );
});

describe('importCredential', () => {
  const base: ImportCredentialInput = {
    provider: 'test',
    owner: 'user-1',
    accessToken: SECRET_ACCESS,
    refreshToken: SECRET_REFRESH,
    expiresIn: 3600,
  };
  const day = 24 * 3600 * 1000;

  const INVALID: [string, Record<string, unknown>, string][] = [
    ['empty access token', { accessToken: '' }, 'access_token'],
    ['non-string access token', { accessToken: 12345 }, 'access_token'],
    ['null access token', { accessToken: null }, 'access_token'],
    ['missing access token', { accessToken: undefined }, 'access_token'],
    ['access token with a space', { accessToken: 'at-SECRET xyz' }, 'access_token'],
    ['access token with a newline', { accessToken: `${SECRET_ACCESS}\n` }, 'access_token'],
    ['access token with leading space', { accessToken: ` ${SECRET_ACCESS}` }, 'access_token'],
    [
      'access token over 16 KiB',
      { accessToken: `${SECRET_ACCESS}${'x'.repeat(16_384)}` },
      'access_token',
    ],
    ['empty refresh token', { refreshToken: '' }, 'refresh_token'],
    ['non-string refresh token', { refreshToken: 42 }, 'refresh_token'],
    ['object refresh token', { refreshToken: { token: SECRET_REFRESH } }, 'refresh_token'],
    ['refresh token with a tab', { refreshToken: 'rt-SECRET\txyz' }, 'refresh_token'],
    ['access token with a NUL', { accessToken: `${SECRET_ACCESS}\u0000x` }, 'access_token'],
    ['access token with a DEL', { accessToken: `${SECRET_ACCESS}\u007f` }, 'access_token'],
    ['access token with a non-ASCII letter', { accessToken: `${SECRET_ACCESS}é` }, 'access_token'],
    ['refresh token with a NUL', { refreshToken: `${SECRET_REFRESH}\u0000` }, 'refresh_token'],
    ['refresh token with an emoji', { refreshToken: `${SECRET_REFRESH}😀` }, 'refresh_token'],
    ['owner with a lone high surrogate', { owner: 'user-\ud800' }, 'owner'],
    ['owner with a lone low surrogate', { owner: '\udc00user' }, 'owner'],
    ['provider with a lone surrogate', { provider: 'te\ud83dst' }, 'provider'],
    ['scope with a lone surrogate', { scope: 'read \udfff' }, 'scope'],
    ['empty owner', { owner: '' }, 'owner'],
    ['non-string owner', { owner: 7 }, 'owner'],
    ['owner with surrounding space', { owner: ' user-1' }, 'owner'],
    ['empty provider', { provider: '' }, 'provider'],
    ['negative expiresIn', { expiresIn: -1 }, 'expires_in'],
    ['NaN expiresIn', { expiresIn: NaN }, 'expires_in'],
    ['Infinity expiresIn', { expiresIn: Infinity }, 'expires_in'],
    ['string expiresIn', { expiresIn: '3600' }, 'expires_in'],
    ['expiresIn over 10 years', { expiresIn: MAX_LIFETIME_S + 1 }, 'expires_in'],
    ['expiresIn of 100 years', { expiresIn: 100 * YEAR_S }, 'expires_in'],
    [
      'both expiresIn and expiresAt',
      { expiresIn: 60, expiresAt: new Date(Date.now() + 60_000) },
      'expires_in',
    ],
    [
      'expiresAt in 1999 (Date)',
      { expiresIn: undefined, expiresAt: new Date('1999-12-31T23:59:59Z') },
      'expires_at',
    ],
    [
      'expiresAt in 1999 (ms)',
      { expiresIn: undefined, expiresAt: Date.UTC(1999, 11, 31) },
      'expires_at',
    ],
    [
      'expiresAt in 1999 (ISO)',
      { expiresIn: undefined, expiresAt: '1999-06-01T00:00:00Z' },
      'expires_at',
    ],
    [
      'expiresAt in epoch seconds',
      { expiresIn: undefined, expiresAt: Math.floor(Date.now() / 1000) },
      'expires_at',
    ],
    [
      'expiresAt 11 years ahead',
      { expiresIn: undefined, expiresAt: Date.now() + 11 * 365 * day },
      'expires_at',
    ],
    [
      'expiresAt in year 9999',
      { expiresIn: undefined, expiresAt: '9999-12-31T00:00:00Z' },
      'expires_at',
    ],
    ['expiresAt garbage string', { expiresIn: undefined, expiresAt: 'tomorrow' }, 'expires_at'],
    [
      'expiresAt invalid ISO',
      { expiresIn: undefined, expiresAt: '2030-13-45T99:00:00Z' },
      'expires_at',
    ],
    ['expiresAt invalid Date', { expiresIn: undefined, expiresAt: new Date('nope') }, 'expires_at'],
    ['expiresAt NaN', { expiresIn: undefined, expiresAt: NaN }, 'expires_at'],
    ['expiresAt object', { expiresIn: undefined, expiresAt: {} }, 'expires_at'],
    ['metadata string', { metadata: 'hello' }, 'metadata'],
    ['metadata array', { metadata: [1, 2] }, 'metadata'],
    ['metadata null', { metadata: null }, 'metadata'],
    ['metadata number', { metadata: 3 }, 'metadata'],
    ['metadata over 8 KiB', { metadata: { blob: 'x'.repeat(8 * 1024) } }, 'metadata'],
    ['metadata with a BigInt', { metadata: { n: 1n } }, 'metadata'],
  ];

  it.each(INVALID)(
    'refuses %s as invalid_input and stores nothing',
    async (_label, patch, field) => {
      const { before } = await seeded();
      const input = { ...base, ...patch } as unknown as ImportCredentialInput;
      const error = await failure(() => s.broker.importCredential(input));
      expectTyped(error, InvalidInputError, 'invalid_input');
      expect((error as InvalidInputError).field).toBe(field);
      expect((error as InvalidInputError).message.startsWith(`${field}: `)).toBe(true);
      expectNothingChanged(before);
    },
  );

  it('refuses circular metadata as invalid_input', async () => {
    const { before } = await seeded();
    const metadata: Record<string, unknown> = {};
    metadata.self = metadata;
    const error = await failure(() => s.broker.importCredential({ ...base, metadata }));
    expectTyped(error, InvalidInputError, 'invalid_input');
    expect((error as InvalidInputError).field).toBe('metadata');
    expectNothingChanged(before);
  });

  it.each([null, undefined, 'x', 42])('refuses a non-object input (%s)', async (input) => {
    const { before } = await seeded();
    const error = await failure(() =>
      s.broker.importCredential(input as unknown as ImportCredentialInput),
    );
    expectTyped(error, InvalidInputError, 'invalid_input');
    expect((error as InvalidInputError).field).toBe('credential');
    expectNothingChanged(before);
  });

  it('refuses an unknown provider as unknown_provider and stores nothing', async () => {
    const { before } = await seeded();
    const error = await failure(() => s.broker.importCredential({ ...base, provider: 'nope' }));
    expectTyped(error, UnknownProviderError, 'unknown_provider');
    expect((error as UnknownProviderError).provider).toBe('nope');
    expect((error as UnknownProviderError).status).toBe(400);
    expectNothingChanged(before);
  });

  it('accepts the boundaries just inside the limits (the refusals above are not blanket)', async () => {
    const { before } = await seeded();
    const ok = [
      { ...base, expiresIn: 0 },
      { ...base, expiresIn: MAX_LIFETIME_S },
      { ...base, expiresIn: undefined, expiresAt: '2000-01-01T00:00:00Z' },
      { ...base, expiresIn: undefined, expiresAt: Date.now() + 9 * 365 * day },
      { ...base, metadata: { blob: 'x'.repeat(8 * 1024 - 20) } },
      { ...base, refreshToken: null },
    ];
    for (const input of ok) await s.broker.importCredential(input);
    expect(dump()).toHaveLength(before.length + ok.length);
    expect(s.provider.stats().tokenRequests).toBe(0);
  });
});

describe('getAccessToken options and reportRejected versions', () => {
  it.each([-1, -0.001, 86_401, 1e12, NaN, Infinity, -Infinity, '60'])(
    'refuses minTtlSeconds %s as invalid_input without refreshing',
    async (minTtlSeconds) => {
      // The connection is expired: had the option been accepted, the provider would be called.
      const { expiredId, before } = await seeded();
      const error = await failure(() =>
        s.broker.getAccessToken(expiredId, { minTtlSeconds: minTtlSeconds as number }),
      );
      expectTyped(error, InvalidInputError, 'invalid_input');
      expect((error as InvalidInputError).field).toBe('min_ttl');
      expectNothingChanged(before);
    },
  );

  it.each([0, -1, 1.5, NaN, Infinity, 2 ** 53, '1', null])(
    'refuses reportRejected version %s as invalid_input without refreshing',
    async (version) => {
      const { validId, before } = await seeded();
      const error = await failure(() => s.broker.reportRejected(validId, version as number));
      expectTyped(error, InvalidInputError, 'invalid_input');
      expect((error as InvalidInputError).field).toBe('version');
      expectNothingChanged(before);
    },
  );
});

describe('unreadable provider responses', () => {
  it('recovers from a non-JSON 2xx on a non-rotating provider and stores only real tokens', async () => {
    s = await scenario({ provider: { rotation: false } });
    const { id, refreshToken } = await s.importGrant({ expiresIn: 0 });
    const importedAccess = openField(s.keyRing, accessColumn(id), {
      credentialId: id,
      field: 'access_token',
    });
    s.provider.injectFailures({ kind: 'malformed_json' });

    const token = await s.broker.getAccessToken(id);

    expect(token.version).toBe(2);
    expect(token.accessToken).not.toBe(importedAccess);
    expect(token.accessToken.startsWith('at_')).toBe(true);
    expect(token.accessToken).not.toBe('at_'); // the truncated body's fragment
    expect(s.provider.isAccessTokenValid(token.accessToken)).toBe(true);
    // What is stored opens to exactly the token handed out, and the provider recognises it.
    const stored = openField(s.keyRing, accessColumn(id), {
      credentialId: id,
      field: 'access_token',
    });
    expect(stored).toBe(token.accessToken);
    expect(s.provider.isAccessTokenValid(stored)).toBe(true);
    // The provider did not rotate: the original refresh token is kept, not replaced by garbage.
    const row = s.sql
      .prepare('select refresh_token, status, intent_hash, lease_id from credentials where id = ?')
      .get(id) as {
      refresh_token: string;
      status: string;
      intent_hash: unknown;
      lease_id: unknown;
    };
    expect(
      openField(s.keyRing, row.refresh_token, { credentialId: id, field: 'refresh_token' }),
    ).toBe(refreshToken);
    expect(row).toMatchObject({ status: 'active', intent_hash: null, lease_id: null });
    expect(s.provider.stats()).toMatchObject({ tokenRequests: 2, redemptions: 1 });
    expect((await s.broker.getConnection(id)).status).toBe('active');
  });

  it('answers refresh_unavailable while every answer is non-JSON, and leaves the tokens as they were', async () => {
    s = await scenario({
      provider: { rotation: false },
      fixture: { maxWaitMs: 300, backoff: { baseMs: 50, maxMs: 100 } },
    });
    const { id } = await s.importGrant({ expiresIn: 0 });
    const tokensBefore = tokenColumns(id);
    s.provider.injectFailures({ kind: 'malformed_json', times: 1000 });

    const error = await failure(() => s.broker.getAccessToken(id));

    expectTyped(error, RefreshUnavailableError, 'refresh_unavailable');
    expect((error as RefreshUnavailableError).lastError).toBe('malformed_response');
    expect(tokenColumns(id)).toEqual(tokensBefore);
    expect(s.provider.stats().redemptions).toBe(0);
    expect(s.provider.stats().tokenRequests).toBeGreaterThanOrEqual(1);
    expect(await s.broker.getConnection(id)).toMatchObject({
      status: 'active',
      version: 1,
      lastError: 'malformed_response',
    });
  });
});

function accessColumn(id: string): string {
  return tokenColumns(id).access_token;
}

function tokenColumns(id: string): {
  access_token: string;
  refresh_token: string;
  version: number;
} {
  return s.sql
    .prepare('select access_token, refresh_token, version from credentials where id = ?')
    .get(id) as { access_token: string; refresh_token: string; version: number };
}

describe('a connection whose provider this process does not know', () => {
  it('fails with unknown_provider and leaves no lease behind', async () => {
    s = await scenario();
    const { id } = await s.importGrant({ expiresIn: 0 });
    const elsewhere = await openBroker({
      ...s.fixture,
      provider: { ...s.fixture.provider, name: 'another' },
    });
    try {
      const error = await elsewhere.broker.getAccessToken(id).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(UnknownProviderError);
      expect(s.sql.prepare('select lease_id from credentials where id = ?').get(id)).toEqual({
        lease_id: null,
      });
      expect(s.provider.stats().tokenRequests).toBe(0);
    } finally {
      await elsewhere.close();
    }
  });
});

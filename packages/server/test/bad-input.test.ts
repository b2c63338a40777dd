import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BAD_INPUT, CONNECTION, SECRET } from './bad-input-cases.ts';
import { dumpTables, startTestServer, type TestServer } from './helpers.ts';

/**
 * Every route refuses malformed input with a 4xx and a stable code, stores nothing, and never
 * echoes a value it was sent. One server for the whole file: each case checks that the tables
 * (audit excepted: refusals are audited) are unchanged.
 */
let s: TestServer;
let connectionId: string;
let clientId: string;
let clientKey: string;

beforeAll(async () => {
  s = await startTestServer({ server: { bodyLimit: 64 * 1024 } });
  await s.putProvider();
  connectionId = (await s.importGrant()).id;
  const client = await s.createClient([{ owner: '*', provider: '*', actions: ['token.read'] }]);
  clientId = client.id;
  clientKey = client.apiKey;
});
afterAll(async () => {
  await s?.close();
});

/** The tables a refused request must leave alone (refusals themselves are audited). */
const STORED = ['credentials', 'providers', 'service_clients', 'settings'];

describe('bad input on every route', () => {
  it.each(BAD_INPUT)('%s → %i %s', async (name, call, status, code) => {
    const before = await dumpTables(s, STORED);
    const response = await s.call({
      ...call,
      url: call.url.replace(CONNECTION, connectionId),
      key: s.adminKey,
    });
    expect(response.statusCode, name).toBe(status);
    expect(response.json(), name).toMatchObject({ error: code });
    expect(typeof response.json<{ message: string }>().message).toBe('string');
    expect(response.body, name).not.toContain(SECRET);
    expect(await dumpTables(s, STORED)).toEqual(before);
  });

  it('says which field is wrong', async () => {
    const message = async (body: unknown) =>
      (await s.admin('POST', '/v1/connections', body)).json<{ message: string }>().message;
    const base = { provider: 'test', owner: 'user-a', access_token: 'at-1' };
    expect(await message({ ...base, extra: 1 })).toBe('body has an unknown field "extra"');
    expect(await message({ ...base, owner: '*' })).toMatch(/owner/);
    expect(await message({ ...base, expires_in: '60' })).toMatch(/expires_in/);
    expect(
      await message({
        ...base,
        expires_in: 60,
        expires_at: new Date(Date.now() + 60_000).toISOString(),
      }),
    ).toBe('expires_in: give either expires_in or expires_at, not both');
  });

  it('checks the key before the body: an unauthenticated malformed request is a 401', async () => {
    const response = await s.call({ method: 'POST', url: '/v1/connections', body: '{"x":' });
    expect(response.statusCode).toBe(401);
    const client = await s.call({
      method: 'POST',
      url: '/v1/clients',
      body: '{"x":',
      key: clientKey,
    });
    expect(client.statusCode).toBe(403);
    expect(clientId).toMatch(/^cli_/);
  });
});

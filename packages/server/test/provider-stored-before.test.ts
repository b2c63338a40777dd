// A provider stored by a version before user info in URLs was refused (issue 14, defect 1) no
// longer resolves. It must not take the listing down with it: it is listed with its problem, and
// reading it or refreshing its connections answers a typed provider_misconfigured that says what
// to correct — never the user info itself.
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from './helpers.ts';

describe('a provider stored with user info in its token URL by an older version', () => {
  let primary: TestServer;
  let s: TestServer;
  let connectionId: string;
  const userInfo = 'olduser:oldpass';

  beforeAll(async () => {
    primary = await startTestServer();
    await primary.putProvider('test');
    await primary.putProvider('legacy');
    ({ id: connectionId } = await primary.importGrant({ provider: 'legacy', expiresIn: 0 }));
    // As the older version stored it: the same row, its token URL with user info.
    const sql = new Database(primary.dbPath);
    const row = sql.prepare('select config from providers where name = ?').get('legacy') as {
      config: string;
    };
    const config = JSON.parse(row.config) as { tokenUrl: string };
    config.tokenUrl = config.tokenUrl.replace('://', `://${userInfo}@`);
    sql
      .prepare('update providers set config = ? where name = ?')
      .run(JSON.stringify(config), 'legacy');
    sql.close();
    // A replica that has not read the row yet: what every server sees once its cache expires.
    s = await startTestServer({ replicaOf: primary });
  });
  afterAll(async () => {
    await s?.close();
    await primary?.close();
  });

  const problem = 'token_url: must be a URL without user info (user:password@)';

  it('is listed with its problem, beside the providers that work, without the user info', async () => {
    const response = await s.admin('GET', '/v1/providers');
    expect(response.statusCode).toBe(200);
    const { providers } = response.json<{ providers: Record<string, unknown>[] }>();
    expect(providers.map((p) => p.name)).toEqual(['legacy', 'test']);
    expect(providers[0]).toMatchObject({
      name: 'legacy',
      problem,
      token_url: s.provider.tokenUrl,
      has_client_secret: true,
    });
    expect(providers[1]).not.toHaveProperty('problem');
    expect(response.body).not.toContain('olduser');
    expect(response.body).not.toContain('oldpass');
  });

  it('reading it answers provider_misconfigured, naming the setting to correct', async () => {
    const response = await s.admin('GET', '/v1/providers/legacy');
    expect(response.statusCode).toBe(409);
    expect(response.json()).toEqual({
      error: 'provider_misconfigured',
      message: `Provider "legacy" is stored with a setting this version refuses (${problem}); correct it with PATCH /v1/providers/legacy (providers.put in code).`,
    });
    expect(response.body).not.toContain('oldpass');
  });

  it("its connections' token route answers provider_misconfigured and sends nothing", async () => {
    const before = s.provider.stats().tokenRequests;
    const response = await s.admin('POST', `/v1/connections/${connectionId}/token`, {});
    expect(response.statusCode).toBe(409);
    expect(response.json()).toMatchObject({ error: 'provider_misconfigured' });
    expect(response.json().message).toContain(problem);
    expect(response.body).not.toContain('oldpass');
    expect(s.provider.stats().tokenRequests).toBe(before);
    expect((await s.admin('GET', `/v1/connections/${connectionId}`)).json()).toMatchObject({
      status: 'active',
    });
  });

  it('a correcting PUT makes it work again', async () => {
    await s.putProvider('legacy');
    expect((await s.admin('GET', '/v1/providers/legacy')).json()).not.toHaveProperty('problem');
    const response = await s.admin('POST', `/v1/connections/${connectionId}/token`, {});
    expect(response.statusCode).toBe(200);
  });
});

import { afterEach, describe, expect, it } from 'vitest';
import { auditRows, BACKENDS, startTestServer, type TestServer } from './helpers.ts';

let s: TestServer;
afterEach(async () => {
  await s?.close();
});

interface TokenBody {
  access_token: string;
  token_type: string;
  expires_at: string;
  version: number;
}

describe.each(BACKENDS)('token hand-out on %s', (backend) => {
  it('hands out a valid token without contacting the provider, not cacheable, audited', async () => {
    s = await startTestServer({ backend });
    await s.putProvider();
    const { id, accessToken } = await s.importGrant({ expiresIn: 3600 });
    const response = await s.admin('POST', `/v1/connections/${id}/token`, {});
    expect(response.statusCode).toBe(200);
    expect(response.headers['cache-control']).toBe('no-store');
    const body = response.json<TokenBody>();
    expect(Object.keys(body).sort()).toEqual([
      'access_token',
      'expires_at',
      'token_type',
      'version',
    ]);
    expect(body).toMatchObject({ access_token: accessToken, version: 1 });
    expect(s.provider.stats().tokenRequests).toBe(0);
    const [row] = (await auditRows(s, `&connection=${id}`)).filter(
      (r) => r.action === 'token.read',
    );
    expect(row).toMatchObject({
      actor: 'admin',
      outcome: 'ok',
      owner: 'user-a',
      provider: 'test',
      request_id: response.headers['x-request-id'],
      detail: { version: 1 },
    });

    // The audit row is the hand-out's record: no access-log line repeats it. A refused hand-out
    // and the admin's calls keep theirs.
    const refused = await s.call({ method: 'POST', url: `/v1/connections/${id}/token`, key: 'x' });
    expect(refused.statusCode).toBe(401);
    const accessLines = s.logLines
      .map((line) => JSON.parse(line) as { msg: string; route?: string; status?: number })
      .filter((line) => line.msg === 'request');
    const linesOf = (route: string) =>
      accessLines.filter((line) => line.route === route).map((line) => line.status);
    expect(linesOf('/v1/connections/:id/token')).toEqual([401]);
    expect(linesOf('/v1/connections')).toEqual([201]);
  });

  it('accepts a request without a body, and refreshes first when min_ttl asks for more', async () => {
    s = await startTestServer({ backend });
    await s.putProvider();
    const { id } = await s.importGrant({ expiresIn: 120 });
    const bare = await s.call({
      method: 'POST',
      url: `/v1/connections/${id}/token`,
      key: s.adminKey,
    });
    expect(bare.statusCode).toBe(200);
    expect(bare.json<TokenBody>().version).toBe(1);
    // Seconds need not be whole (the SDK passes what its caller gave).
    const fractional = await s.admin('POST', `/v1/connections/${id}/token`, { min_ttl: 0.5 });
    expect(fractional.json<TokenBody>().version).toBe(1);
    const longer = await s.admin('POST', `/v1/connections/${id}/token`, { min_ttl: 600 });
    expect(longer.json<TokenBody>().version).toBe(2);
    expect(s.provider.isAccessTokenValid(longer.json<TokenBody>().access_token)).toBe(true);
    expect(s.provider.stats().redemptions).toBe(1);
  });

  it('gives 50 concurrent callers of an expired token one redemption and the same token', async () => {
    s = await startTestServer({ backend, provider: { latencyMs: 50 } });
    await s.putProvider();
    const { id } = await s.importGrant({ expiresIn: 0 });
    const responses = await Promise.all(
      Array.from({ length: 50 }, () => s.admin('POST', `/v1/connections/${id}/token`, {})),
    );
    expect(responses.map((r) => r.statusCode)).toEqual(Array(50).fill(200));
    expect(new Set(responses.map((r) => r.json<TokenBody>().access_token)).size).toBe(1);
    expect(s.provider.stats().redemptions).toBe(1);
    // The refresh is audited once, under the request that led it.
    const refreshes = (await auditRows(s, `&connection=${id}`)).filter(
      (r) => r.action === 'connection.refresh',
    );
    expect(refreshes).toHaveLength(1);
    expect(refreshes[0]).toMatchObject({ actor: 'admin', outcome: 'ok', detail: { version: 2 } });
    expect(responses.map((r) => r.headers['x-request-id'])).toContain(refreshes[0]!.request_id);
  });

  it('refreshes a rejected token once for many reports, and hands a late reporter the new one', async () => {
    s = await startTestServer({ backend });
    await s.putProvider();
    const { id, accessToken } = await s.importGrant({ expiresIn: 3600 });
    const reports = await Promise.all(
      Array.from({ length: 20 }, () =>
        s.admin('POST', `/v1/connections/${id}/token/rejected`, { version: 1 }),
      ),
    );
    expect(new Set(reports.map((r) => r.statusCode))).toEqual(new Set([200]));
    expect(new Set(reports.map((r) => r.json<TokenBody>().version))).toEqual(new Set([2]));
    expect(reports[0]!.json<TokenBody>().access_token).not.toBe(accessToken);
    const late = await s.admin('POST', `/v1/connections/${id}/token/rejected`, { version: 1 });
    expect(late.json<TokenBody>().version).toBe(2);
    expect(s.provider.stats().redemptions).toBe(1);
    const rows = (await auditRows(s, `&connection=${id}`)).filter(
      (r) => r.action === 'token.rejected',
    );
    expect(rows).toHaveLength(21);
    expect(rows[20]!.detail).toEqual({ version: 2, reported_version: 1 });
  });

  it('answers 409 needs_reauth with its reason when the provider refuses the refresh token', async () => {
    s = await startTestServer({ backend });
    await s.putProvider();
    const { id } = await s.importGrant({ expiresIn: 0 });
    s.provider.injectFailures({ kind: 'invalid_grant' });
    const response = await s.admin('POST', `/v1/connections/${id}/token`, {});
    expect(response.statusCode).toBe(409);
    expect(response.json()).toMatchObject({ error: 'needs_reauth', reason: 'invalid_grant' });
    const again = await s.admin('POST', `/v1/connections/${id}/token`, {});
    expect(again.json()).toMatchObject({ error: 'needs_reauth', reason: 'invalid_grant' });
    expect(s.provider.stats().tokenRequests).toBe(1);
    const info = await s.admin('GET', `/v1/connections/${id}`);
    expect(info.json()).toMatchObject({ status: 'needs_reauth', status_reason: 'invalid_grant' });
    const rows = await auditRows(s, `&connection=${id}`);
    expect(rows.map((r) => [r.action, r.outcome])).toEqual([
      ['connection.create', 'ok'],
      ['connection.refresh', 'needs_reauth'],
      ['token.read', 'needs_reauth'],
      ['token.read', 'needs_reauth'],
    ]);
  });

  it('answers 503 refresh_unavailable with Retry-After while the provider is down', async () => {
    s = await startTestServer({
      backend,
      server: { broker: { maxWaitMs: 300, backoff: { baseMs: 1_000, maxMs: 2_000 } } },
    });
    await s.putProvider();
    const { id } = await s.importGrant({ expiresIn: 0 });
    s.provider.injectFailures({ kind: 'server_error', status: 503, times: 100 });
    const response = await s.admin('POST', `/v1/connections/${id}/token`, {});
    expect(response.statusCode).toBe(503);
    const body = response.json<{ error: string; retry_after: number }>();
    expect(body.error).toBe('refresh_unavailable');
    expect(Number(response.headers['retry-after'])).toBe(body.retry_after);
    expect(body.retry_after).toBeGreaterThanOrEqual(1);
    // The connection is still healthy: it can be refreshed once the provider is back.
    const info = await s.admin('GET', `/v1/connections/${id}`);
    expect(info.json()).toMatchObject({ status: 'active' });
  });
});

import { afterEach, describe, expect, it } from 'vitest';
import { auditRows, BACKENDS, postGrant, startTestServer, type TestServer } from './helpers.ts';

let s: TestServer;
afterEach(async () => {
  await s?.close();
});

describe.each(BACKENDS)('connections on %s', (backend) => {
  it('imports a connection and answers its metadata, never a token', async () => {
    s = await startTestServer({ backend });
    await s.putProvider();
    const { grant, response: created } = await postGrant(s, {
      expires_in: 3600,
      scope: 'read write',
      metadata: { team: 'blue' },
    });
    expect(created.statusCode).toBe(201);
    const body = created.json();
    expect(Object.keys(body).sort()).toEqual(
      ['access_expires_at', 'id', 'owner', 'provider', 'status', 'version'].sort(),
    );
    expect(body).toMatchObject({ provider: 'test', owner: 'user-a', status: 'active', version: 1 });
    expect(Date.parse(body.access_expires_at) - Date.now()).toBeGreaterThan(3500_000);

    const read = await s.admin('GET', `/v1/connections/${body.id}`);
    expect(read.statusCode).toBe(200);
    expect(read.json()).toMatchObject({
      id: body.id,
      has_refresh_token: true,
      scope: 'read write',
      metadata: { team: 'blue' },
      failures: 0,
      last_error: null,
    });
    for (const response of [created, read]) {
      expect(response.body).not.toContain(grant.access_token);
      expect(response.body).not.toContain(grant.refresh_token);
    }
  });

  it('imports an already expired access token; the first hand-out refreshes it once', async () => {
    s = await startTestServer({ backend });
    await s.putProvider();
    const { grant, response: created } = await postGrant(s, {
      expires_at: new Date(Date.now() - 60_000).toISOString(),
    });
    expect(created.statusCode).toBe(201);
    const { id } = created.json<{ id: string }>();
    const token = await s.admin('POST', `/v1/connections/${id}/token`, {});
    expect(token.statusCode).toBe(200);
    expect(token.json()).toMatchObject({ version: 2 });
    expect(token.json<{ token_type: string }>().token_type.toLowerCase()).toBe('bearer');
    expect(token.json<{ access_token: string }>().access_token).not.toBe(grant.access_token);
    expect(s.provider.stats().redemptions).toBe(1);
  });

  it('lists by owner, provider and status, a page at a time', async () => {
    s = await startTestServer({ backend });
    await s.putProvider('test');
    await s.putProvider('other');
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await s.importGrant({ owner: 'user-a' })).id);
    await s.importGrant({ owner: 'user-b' });
    await s.importGrant({ owner: 'user-a', provider: 'other' });

    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page = await s.admin(
        'GET',
        `/v1/connections?owner=user-a&provider=test&limit=2${cursor ? `&cursor=${cursor}` : ''}`,
      );
      expect(page.statusCode).toBe(200);
      const body = page.json<{
        connections: { id: string; owner: string }[];
        next_cursor: string | null;
      }>();
      expect(body.connections.length).toBeLessThanOrEqual(2);
      seen.push(...body.connections.map((c) => c.id));
      cursor = body.next_cursor;
    } while (cursor);
    expect(seen).toEqual([...ids].sort());

    const all = await s.admin('GET', '/v1/connections?status=active');
    expect(all.json<{ connections: unknown[] }>().connections).toHaveLength(7);
    const none = await s.admin('GET', '/v1/connections?status=needs_reauth');
    expect(none.json()).toEqual({ connections: [], next_cursor: null });
  });

  it('deletes a connection: 204, then 404 everywhere, and audited', async () => {
    s = await startTestServer({ backend });
    await s.putProvider();
    const { id } = await s.importGrant();
    const deleted = await s.admin('DELETE', `/v1/connections/${id}`);
    expect(deleted.statusCode).toBe(204);
    expect(deleted.body).toBe('');
    for (const [method, url] of [
      ['GET', `/v1/connections/${id}`],
      ['DELETE', `/v1/connections/${id}`],
      ['POST', `/v1/connections/${id}/token`],
    ] as const) {
      const response = await s.admin(method, url, method === 'POST' ? {} : undefined);
      expect(response.statusCode).toBe(404);
      expect(response.json()).toMatchObject({ error: 'not_found' });
    }
    const rows = await auditRows(s, `&connection=${id}`);
    expect(rows.map((r) => [r.action, r.outcome])).toEqual([
      ['connection.create', 'ok'],
      ['connection.delete', 'ok'],
      ['connection.delete', 'not_found'],
      ['token.read', 'not_found'],
    ]);
  });

  it('refuses a connection for a provider that is not configured, storing nothing', async () => {
    s = await startTestServer({ backend });
    const response = await s.admin('POST', '/v1/connections', {
      provider: 'nope',
      owner: 'user-a',
      access_token: 'at-1',
    });
    expect(response.statusCode).toBe(400);
    expect(response.json()).toMatchObject({ error: 'unknown_provider' });
    const list = await s.admin('GET', '/v1/connections');
    expect(list.json()).toEqual({ connections: [], next_cursor: null });
  });
});

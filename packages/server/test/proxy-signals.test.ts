// Proxy mode, what a provider's API says and what the audit log must hold: the "token rejected"
// signals a provider's settings name besides 401, and a proxied answer that is given back only
// once its audit row is stored (fail closed, as a hand-out is), and one cut off by its caller.
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { auditRows, type AuditRow } from './helpers.ts';
import { startProxySetup, type ProxySetup } from './proxy-helpers.ts';

let p: ProxySetup | undefined;
afterEach(async () => {
  await p?.close();
  p = undefined;
});

async function proxyRows(setup: ProxySetup): Promise<AuditRow[]> {
  return (await auditRows(setup.s)).filter((row) => row.action === 'proxy');
}

async function proxyOutcomes(setup: ProxySetup): Promise<{ outcome: string; retried: unknown }[]> {
  return (await proxyRows(setup)).map((row) => ({
    outcome: row.outcome,
    retried: row.detail?.retried,
  }));
}

describe("proxy mode and a provider's own token-rejected signal", () => {
  it('reports the token rejected on a configured JSON error code or status, and sends the call once more', async () => {
    p = await startProxySetup({
      provider: { rejected_token_errors: ['invalid_auth'], rejected_token_statuses: [403, 419] },
    });
    const { id } = p.connection;
    // Slack's way: HTTP 200 with {"ok":false,"error":"invalid_auth"}, with a length and without.
    for (const [round, path] of [
      '/ok-false-when-stale',
      '/ok-false-when-stale?chunked=1',
    ].entries()) {
      p.s.provider.expireAccessTokens();
      const answer = await p.call(`/v1/proxy/${id}${path}`);
      expect([answer.status, JSON.parse(answer.text)]).toEqual([200, { ok: true }]);
      expect(p.s.provider.stats().redemptions).toBe(round + 1);
    }
    // A configured status, without any WWW-Authenticate.
    p.s.provider.expireAccessTokens();
    const status = await p.call(`/v1/proxy/${id}/status-when-stale/419`);
    expect([status.status, p.s.provider.stats().redemptions]).toEqual([200, 3]);
    expect(p.resource.stats).toEqual({ requests: 6, rejected: 3 });

    // A JSON answer with another error code is not read as a refusal.
    const other = await p.call(`/v1/proxy/${id}/status/500`);
    expect([other.status, p.s.provider.stats().redemptions]).toEqual([500, 3]);
    // Nor a status the settings do not name: the API's own answer, passed back as it is.
    p.s.provider.expireAccessTokens();
    const unnamed = await p.call(`/v1/proxy/${id}/status-when-stale/418`);
    expect([unnamed.status, JSON.parse(unnamed.text)]).toEqual([418, { message: 'refused' }]);
    expect(p.s.provider.stats().redemptions).toBe(3);
    expect((await proxyOutcomes(p)).map((row) => row.retried)).toEqual([
      true,
      true,
      true,
      false,
      false,
    ]);
  });

  it('passes a JSON error body through untouched when the provider names no error codes', async () => {
    p = await startProxySetup();
    const { id } = p.connection;
    p.s.provider.expireAccessTokens();
    const answer = await p.call(`/v1/proxy/${id}/ok-false-when-stale?chunked=1`);
    expect(answer.status).toBe(200);
    expect(answer.text).toBe('{"ok":false,"error":"invalid_auth"}');
    // Sent without a length by the upstream: still without one.
    expect(answer.headers['content-length']).toBeUndefined();
    expect(p.s.provider.stats().redemptions).toBe(0);
  });

  it('refuses bad signal settings with a typed error naming the field', async () => {
    p = await startProxySetup();
    for (const [field, value] of [
      ['rejected_token_statuses', [200]],
      ['rejected_token_statuses', ['401']],
      ['rejected_token_errors', ['']],
      ['rejected_token_errors', 'invalid_auth'],
    ] as const) {
      const response = await p.s.admin('PATCH', '/v1/providers/test', { [field]: value });
      expect([response.statusCode, field]).toEqual([400, field]);
      expect(response.json()).toMatchObject({ error: 'invalid_request' });
      expect(response.body).toContain(field);
    }
  });
});

describe('a proxied answer whose audit row cannot be stored', () => {
  it('is not given back: a small one is answered 503, a streamed one breaks off before its end', async () => {
    p = await startProxySetup();
    const { id } = p.connection;
    expect((await p.call(`/v1/proxy/${id}/json`)).status).toBe(200);

    // The database refuses audit rows (a full disk, a revoked grant: here a trigger).
    const sql = new Database(p.s.dbPath);
    sql.exec(
      "create trigger no_audit before insert on audit_events begin select raise(abort, 'audit refused'); end",
    );
    const small = await p.call(`/v1/proxy/${id}/json`);
    expect(small.status).toBe(503);
    expect(small.headers['tokenwarden-error']).toBe('store_unavailable');
    expect(JSON.parse(small.text)).toMatchObject({ error: 'store_unavailable' });
    const bytes = 1024 * 1024;
    await expect(p.call(`/v1/proxy/${id}/bytes/${bytes}`)).rejects.toThrow();

    sql.exec('drop trigger no_audit');
    sql.close();
    expect((await p.call(`/v1/proxy/${id}/json`)).status).toBe(200);
    // Every call that went upstream has its one row; those refused say so.
    expect(p.resource.stats.requests).toBe(4);
    await expect
      .poll(async () => (await proxyOutcomes(p!)).map((row) => row.outcome))
      .toEqual(['ok', 'store_unavailable', 'store_unavailable', 'ok']);
  });
});

describe('a caller that goes away in the middle of a streamed answer', () => {
  it('stops the upstream request, and the call is audited once with the bytes that went', async () => {
    p = await startProxySetup();
    const { id } = p.connection;
    const total = 256 * 1024 * 1024;
    const answer = await request(`${p.base}/v1/proxy/${id}/bytes/${total}`, {
      headers: { authorization: `Bearer ${p.worker.apiKey}` },
    });
    let received = 0;
    for await (const chunk of answer.body as AsyncIterable<Buffer>) {
      received += chunk.length;
      if (received >= 1024 * 1024) break;
    }
    // Tokenwarden gave up its upstream request too, rather than leave it paused.
    await expect.poll(() => p!.resource.cutOff).toBe(1);
    // The server goes on answering; the cut-off call has its one row, short of the whole.
    expect((await p.call(`/v1/proxy/${id}/json`)).status).toBe(200);
    await expect
      .poll(async () => (await proxyRows(p!)).filter((row) => row.detail?.path !== '/json'))
      .toHaveLength(1);
    const [row] = (await proxyRows(p)).filter((r) => r.detail?.path !== '/json');
    expect(row!.detail).toMatchObject({ status: 200 });
    expect(Number(row!.detail?.bytes_down)).toBeGreaterThanOrEqual(received);
    expect(Number(row!.detail?.bytes_down)).toBeLessThan(total);
  });
});

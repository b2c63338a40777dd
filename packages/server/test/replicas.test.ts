import { afterEach, describe, expect, it } from 'vitest';
import { auditRows, BACKENDS, startTestServer, type TestServer } from './helpers.ts';

/** Two replicas of the server on one database: everything they share lives in it. */
let a: TestServer;
let b: TestServer | undefined;
afterEach(async () => {
  await b?.close(); // the replica first: the primary drops the database
  await a?.close();
  b = undefined;
});

describe.each(BACKENDS)('two replicas on one %s database', (backend) => {
  it('share providers, clients, revocations, connections and the audit', async () => {
    a = await startTestServer({ backend, provider: { latencyMs: 50 } });
    b = await startTestServer({ replicaOf: a });
    await a.putProvider();
    const client = await a.createClient([
      { owner: '*', provider: '*', actions: ['token.read', 'connections.write'] },
    ]);
    const { id } = await a.importGrant({ expiresIn: 0 });
    const handOut = (server: TestServer, connection: string) =>
      server.call({
        method: 'POST',
        url: `/v1/connections/${connection}/token`,
        body: {},
        key: client.apiKey,
      });

    // Callers on both replicas at once: one redemption, one token.
    const responses = await Promise.all(
      Array.from({ length: 40 }, (_, i) => handOut(i % 2 ? a : b!, id)),
    );
    expect(responses.map((r) => r.statusCode)).toEqual(Array(40).fill(200));
    expect(
      new Set(responses.map((r) => r.json<{ access_token: string }>().access_token)).size,
    ).toBe(1);
    expect(a.provider.stats().redemptions).toBe(1);
    // Every caller but one leader per replica waited; the replica that lost the lease says so.
    const counter = async (server: TestServer, name: string) => {
      const text = (await server.call({ method: 'GET', url: '/metrics' })).body;
      return Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(text)?.[1]);
    };
    const waits =
      (await counter(a, 'tokenwarden_refresh_waits_total')) +
      (await counter(b!, 'tokenwarden_refresh_waits_total'));
    const conflicts =
      (await counter(a, 'tokenwarden_lease_conflicts_total')) +
      (await counter(b!, 'tokenwarden_lease_conflicts_total'));
    expect(waits).toBeGreaterThanOrEqual(1);
    expect(conflicts).toBeLessThanOrEqual(1);

    // Deleted on A (where B remembers the owner): B answers not_found at once.
    expect(
      (await a.call({ method: 'DELETE', url: `/v1/connections/${id}`, key: client.apiKey }))
        .statusCode,
    ).toBe(204);
    expect((await handOut(b!, id)).statusCode).toBe(404);

    // Revoked on A: refused on B from the next request.
    const other = await a.importGrant();
    expect((await handOut(b!, other.id)).statusCode).toBe(200);
    expect((await a.admin('DELETE', `/v1/clients/${client.id}`)).statusCode).toBe(204);
    expect((await handOut(b!, other.id)).statusCode).toBe(401);

    // Both replicas' audit lands in the one log.
    await b!.app.close();
    const rows = await auditRows(a, `&client=${client.id}`);
    expect(rows.filter((r) => r.action === 'token.read')).toHaveLength(42);
    expect(rows.filter((r) => r.action === 'connection.refresh')).toHaveLength(1);
  });
});

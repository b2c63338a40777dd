// `tokenwarden serve` stopping, through the real binary: two replicas on one SQLite file, the
// test provider slow to answer, SIGTERM in the middle of a refresh storm.
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KeyRing } from '@tokenwarden/core';
import { TestProvider } from '@tokenwarden/testkit';
import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_KEY, call, serve, type Replica } from './serve-process.ts';

// Each step spawns a Node process (the compiled CLI): slow on a busy shared machine.
const SLOW = { timeout: 240_000 };

/**
 * A hand-out. Connections are imported with an hour left, so that no replica's scheduler refreshes
 * them on its own; `min_ttl` beyond that makes a hand-out refresh.
 */
const handOut = (replica: Replica, id: string, body: { min_ttl?: number } = {}) =>
  call(replica, 'POST', `/v1/connections/${id}/token`, body);
const REFRESH = { min_ttl: 7_200 };

async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 20));
}

describe('tokenwarden serve on SIGTERM', () => {
  let dir: string;
  let provider: TestProvider;
  let env: Record<string, string>;
  let replicas: Replica[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tw-shutdown-'));
    // A replay inside the grace window is answered: the replica taking over after an abort
    // recovers the credential (invariant 6) instead of marking it refresh_in_doubt.
    provider = await TestProvider.start({ reuseGraceMs: 600_000 });
    env = {
      TOKENWARDEN_DB: join(dir, 'tokenwarden.sqlite'),
      TOKENWARDEN_KEYS: KeyRing.generate('k1').serialize(),
      TOKENWARDEN_ADMIN_KEY: ADMIN_KEY,
    };
    const first = await serve(env);
    replicas.push(first);
    const put = await call(first, 'PUT', '/v1/providers/test', {
      token_url: provider.tokenUrl,
      client_id: provider.clientId,
      client_secret: provider.clientSecret,
      reuse_grace_seconds: 600,
    });
    expect(put.status).toBe(200);
    first.child.kill('SIGTERM');
    expect(await first.exited).toBe(0);
  }, 120_000);
  afterEach(async () => {
    for (const replica of replicas) {
      if (replica.child.exitCode === null) {
        replica.child.kill('SIGKILL');
        await replica.exited;
      }
    }
    replicas = [];
    provider.configure({ latencyMs: 0 });
  });
  afterAll(async () => {
    await provider.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const start = async (args: string[] = []) => {
    const replica = await serve(env, args);
    replicas.push(replica);
    return replica;
  };

  const importConnection = async (replica: Replica) => {
    const grant = provider.issueGrant();
    const imported = await call(replica, 'POST', '/v1/connections', {
      provider: 'test',
      owner: 'user-a',
      access_token: grant.access_token,
      refresh_token: grant.refresh_token,
      expires_in: 3_600,
    });
    expect(imported.status).toBe(201);
    return imported.body.id as string;
  };

  const leaseAndIntent = (id: string) => {
    const sql = new Database(env.TOKENWARDEN_DB!, { readonly: true });
    try {
      return sql
        .prepare('select lease_id, intent_hash, version from credentials where id = ?')
        .get(id) as { lease_id: string | null; intent_hash: string | null; version: number };
    } finally {
      sql.close();
    }
  };

  it(
    'answers every request accepted during a refresh storm, with one redemption, and exits 0',
    SLOW,
    async () => {
      const [a, b] = [await start(), await start()];
      const id = await importConnection(a);
      provider.configure({ latencyMs: 1_500 });
      const before = provider.stats().redemptions;

      // A leads (its request is at the provider), B's callers wait behind A's lease.
      const onA = Array.from({ length: 10 }, () => handOut(a, id, REFRESH));
      await until(() => provider.stats().tokenRequests > 0 && leaseAndIntent(id).lease_id !== null);
      const onB = Array.from({ length: 10 }, () => handOut(b, id, REFRESH));
      a.child.kill('SIGTERM');

      const answers = await Promise.all([...onA, ...onB]);
      expect(answers.map((answer) => answer.status)).toEqual(Array(20).fill(200));
      expect(new Set(answers.map((answer) => answer.body.access_token)).size).toBe(1);
      expect(provider.stats().redemptions - before).toBe(1);
      expect(await a.exited).toBe(0);
      expect(a.stderr()).toMatch(/^Stopped\.$/m);

      // Nothing of A's is left in the row: B refreshes it at once when told the token is bad.
      const row = leaseAndIntent(id);
      expect(row.lease_id).toBeNull();
      expect(row.intent_hash).toBeNull();
      provider.configure({ latencyMs: 0 });
      const rejected = await call(b, 'POST', `/v1/connections/${id}/token/rejected`, {
        version: row.version,
      });
      expect(rejected.status).toBe(200);
      expect(provider.stats().redemptions - before).toBe(2);
    },
  );

  it(
    'answers a request still waiting on a slow provider 503, retryable, at the end of the grace period; another replica takes over at once',
    SLOW,
    async () => {
      const [a, b] = [await start(['--shutdown-grace', '1']), await start()];
      const id = await importConnection(a);
      provider.configure({ latencyMs: 30_000 });
      const sent = provider.stats().tokenRequests;
      const waiting = handOut(a, id, REFRESH);
      await until(() => provider.stats().tokenRequests > sent);
      a.child.kill('SIGTERM');

      const answer = await waiting;
      expect(answer.status).toBe(503);
      expect(answer.retryAfter).toMatch(/^\d+$/);
      expect(answer.body.error).toBe('refresh_unavailable');
      expect(await a.exited).toBe(0);
      expect(a.stderr()).toMatch(/^Stopped\.$/m);

      // The lease is handed back, the intent kept for the next leader (invariant 6).
      const row = leaseAndIntent(id);
      expect(row.lease_id).toBeNull();
      expect(row.intent_hash).not.toBeNull();
      provider.configure({ latencyMs: 0 });
      const recovered = await handOut(b, id, REFRESH);
      expect(recovered.status).toBe(200);
      expect(leaseAndIntent(id)).toMatchObject({ lease_id: null, intent_hash: null });
    },
  );

  it('exits at once on a second signal', SLOW, async () => {
    const a = await start(['--shutdown-grace', '600']);
    const id = await importConnection(a);
    provider.configure({ latencyMs: 30_000 });
    const sent = provider.stats().tokenRequests;
    const waiting = handOut(a, id, REFRESH).catch((error: unknown) => error);
    await until(() => provider.stats().tokenRequests > sent);
    a.child.kill('SIGTERM');
    await until(() => a.stderr().includes('Shutting down'));
    a.child.kill('SIGTERM');
    expect(await a.exited).toBe(130);
    expect(a.stderr()).toContain('SIGTERM again: exiting without waiting.');
    expect(await waiting).toBeInstanceOf(Error); // the connection ends unanswered, as asked
  });
});

describe('tokenwarden serve on a read-only database', () => {
  it(
    'is not ready, refuses hand-outs it cannot audit, and says what it could not write',
    SLOW,
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'tw-readonly-'));
      const provider = await TestProvider.start();
      const env = {
        TOKENWARDEN_DB: join(dir, 'tokenwarden.sqlite'),
        TOKENWARDEN_KEYS: KeyRing.generate('k1').serialize(),
        TOKENWARDEN_ADMIN_KEY: ADMIN_KEY,
      };
      let replica: Replica | undefined;
      try {
        replica = await serve(env);
        const grant = provider.issueGrant();
        expect((await call(replica, 'GET', '/readyz')).status).toBe(200);
        await call(replica, 'PUT', '/v1/providers/test', {
          token_url: provider.tokenUrl,
          client_id: provider.clientId,
          client_secret: provider.clientSecret,
        });
        const imported = await call(replica, 'POST', '/v1/connections', {
          provider: 'test',
          owner: 'user-a',
          access_token: grant.access_token,
          refresh_token: grant.refresh_token,
          expires_in: 3600,
        });
        const id = imported.body.id as string;
        replica.child.kill('SIGTERM');
        expect(await replica.exited).toBe(0);

        // Read-only for the server: a file it may read but not write (root writes anything, so
        // as root the server runs as nobody).
        chmodSync(env.TOKENWARDEN_DB, 0o444);
        chmodSync(dir, 0o777);
        const asNobody = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};
        replica = await serve(env, [], { ...asNobody, cwd: dir });
        const ready = await call(replica, 'GET', '/readyz');
        expect(ready.status).toBe(503);
        expect(ready.body.error).toBe('store_unavailable');
        expect(ready.retryAfter).toBe('1');

        // The token is valid and readable, but its hand-out cannot be audited: refused.
        const refused = await handOut(replica, id);
        expect(refused.status).toBe(503);
        expect(refused.body).toEqual({
          error: 'store_unavailable',
          message: expect.any(String),
        });
        expect(JSON.stringify(refused)).not.toContain(grant.access_token);
        // Every write is a retryable 503, not a 500.
        const created = await call(replica, 'POST', '/v1/clients', { name: 'late', grants: [] });
        expect(created.status).toBe(503);
        expect(created.body.error).toBe('store_unavailable');

        replica.child.kill('SIGTERM');
        expect(await replica.exited).toBe(1);
        expect(replica.stderr()).toMatch(/Stopped, but \d+ audit event\(s\) could not be written/);
        expect(replica.stderr()).not.toMatch(/^Stopped\.$/m);
      } finally {
        if (replica && replica.child.exitCode === null) replica.child.kill('SIGKILL');
        await provider.close();
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});

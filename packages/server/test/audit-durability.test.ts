// Issue 14 defect 5: an audit event is never dropped, and no token leaves unaudited. A hand-out
// waits for its audit row; one the store will not take in time is refused 503, and the log says
// so once the store takes writes again.
import Database from 'better-sqlite3';
import { StoreUnavailableError } from '@tokenwarden/core';
import { afterEach, describe, expect, it } from 'vitest';
import { AuditWriter } from '../src/audit/audit-writer.ts';
import {
  auditEvent,
  auditRows,
  startTestServer,
  tempSqliteStore,
  type TestServer,
} from './helpers.ts';

let s: TestServer | undefined;
afterEach(async () => {
  await s?.close();
  s = undefined;
});

describe('a hand-out whose audit row cannot be stored', () => {
  it('is refused 503 store_unavailable, and the refusal is what the log records', async () => {
    s = await startTestServer();
    await s.putProvider();
    const { id } = await s.importGrant();
    const { apiKey } = await s.createClient([
      { owner: '*', provider: 'test', actions: ['token.read'] },
    ]);
    const handOut = () =>
      s!.call({ method: 'POST', url: `/v1/connections/${id}/token`, key: apiKey });
    expect((await handOut()).statusCode).toBe(200);

    // The database refuses audit rows (a full disk, a revoked grant: here a trigger).
    const sql = new Database(s.dbPath);
    sql.exec(
      "create trigger no_audit before insert on audit_events begin select raise(abort, 'audit refused'); end",
    );
    const refused = await Promise.all([handOut(), handOut(), handOut()]);
    for (const response of refused) {
      expect(response.statusCode).toBe(503);
      expect(response.headers['retry-after']).toBe('1');
      expect(response.json()).toMatchObject({ error: 'store_unavailable' });
      expect(response.body).not.toContain('access_token');
    }

    sql.exec('drop trigger no_audit');
    sql.close();
    expect((await handOut()).statusCode).toBe(200);
    const reads = (await auditRows(s)).filter((row) => row.action === 'token.read');
    // Two tokens left; three hand-outs were refused and are logged as such, none as "ok".
    expect(reads.map((row) => row.outcome)).toEqual([
      'ok',
      'store_unavailable',
      'store_unavailable',
      'store_unavailable',
      'ok',
    ]);
  });
});

describe('AuditWriter.recordDurably', () => {
  const open = tempSqliteStore();

  it('refuses a caller whose row is not stored within the bound, and keeps the row', async () => {
    const service = (await open()).service;
    const append = service.appendAudit.bind(service);
    let release: (() => void) | undefined;
    service.appendAudit = async (events) => {
      // The store hangs (a lock held elsewhere) until released.
      await new Promise<void>((resolve) => (release = resolve));
      return append(events);
    };
    const writer = new AuditWriter(service, { durableWithinMs: 50 });
    const event = { ...auditEvent(1), at: Date.now() };
    await expect(writer.recordDurably(event)).rejects.toBeInstanceOf(StoreUnavailableError);
    release!();
    expect(await writer.close()).toBe(0);
    // The write under way stored it as it was: the log errs on the side of the hand-out.
    const rows = await service.listAudit({ limit: 10 });
    expect(rows.map((row) => row.requestId)).toEqual(['r1']);
  });

  it('says how many events it could not write when closed', async () => {
    const service = (await open()).service;
    service.appendAudit = () => Promise.reject(new Error('read-only'));
    const problems: string[] = [];
    const writer = new AuditWriter(service, {
      onProblem: ({ kind, count }) => problems.push(`${kind} ${count}`),
    });
    writer.record(auditEvent(1));
    writer.record(auditEvent(2));
    await expect(writer.recordDurably({ ...auditEvent(3), at: Date.now() })).rejects.toBeInstanceOf(
      StoreUnavailableError,
    );
    expect(await writer.close(2)).toBe(3);
    expect(problems).toContain('dropped 3');
  });
});

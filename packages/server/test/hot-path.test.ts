// Behaviour kept by the hand-out path's cheaper implementations (issue 4's HTTP target).
import { Writable } from 'node:stream';
import type { FastifyBaseLogger } from 'fastify';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { AuditWriter } from '../src/audit/audit-writer.ts';
import { OwnerCache } from '../src/http/owner-cache.ts';
import { lazyChildLoggerFactory } from '../src/http/request-logger.ts';
import { auditEvent, tempSqliteStore } from './helpers.ts';

describe('AuditWriter statements', () => {
  const open = tempSqliteStore();

  it('writes a large batch in statements of at most 64 rows, in order, each row once', async () => {
    const service = (await open()).service;
    const append = service.appendAudit.bind(service);
    const statements: number[] = [];
    let failNext = false;
    service.appendAudit = (events) => {
      statements.push(events.length);
      if (failNext) {
        failNext = false;
        return Promise.reject(new Error('down'));
      }
      return append(events);
    };
    const writer = new AuditWriter(service, { batchSize: 1000, flushIntervalMs: 60_000 });
    for (let i = 0; i < 150; i++) writer.record(auditEvent(i));
    await writer.flush();
    expect(statements).toEqual([64, 64, 22]);

    // A statement that fails keeps its rows and the ones after it, ahead of newer events.
    for (let i = 150; i < 250; i++) writer.record(auditEvent(i));
    const original = service.appendAudit;
    let calls = 0;
    service.appendAudit = (events) => {
      calls += 1;
      if (calls === 2) failNext = true;
      return original(events);
    };
    await expect(writer.flush()).rejects.toThrow('down');
    expect(writer.pending).toBe(36);
    writer.record(auditEvent(250));
    await writer.close();
    const rows = await service.listAudit({ limit: 1000 });
    expect(rows.map((r) => r.requestId).reverse()).toEqual(
      Array.from({ length: 251 }, (_, i) => `r${i}`),
    );
  });
});

describe('OwnerCache', () => {
  it('gives a used entry a second chance and drops an unused one when full', () => {
    const cache = new OwnerCache(2);
    cache.set('a', { owner: 'a', provider: 'p' });
    cache.set('b', { owner: 'b', provider: 'p' });
    cache.get('a');
    cache.set('c', { owner: 'c', provider: 'p' }); // b is dropped, a kept
    expect([cache.get('a'), cache.get('b'), cache.get('c')]).toEqual([
      { owner: 'a', provider: 'p' },
      undefined,
      { owner: 'c', provider: 'p' },
    ]);
    cache.set('a', { owner: 'a', provider: 'p' }); // replacing does not evict
    expect(cache.size).toBe(2);
  });
});

describe('request loggers', () => {
  function capture(level: string): { logger: FastifyBaseLogger; lines: () => object[] } {
    const chunks: string[] = [];
    const stream = new Writable({
      write(chunk: Buffer, _encoding, done) {
        chunks.push(chunk.toString());
        done();
      },
    });
    const logger = pino({ level }, stream) as unknown as FastifyBaseLogger;
    return {
      logger,
      lines: () =>
        chunks
          .join('')
          .split('\n')
          .filter(Boolean)
          .map((line) => JSON.parse(line) as object),
    };
  }

  it('makes no pino child until a line is written, and writes it with the request id', () => {
    const { logger, lines } = capture('warn');
    let children = 0;
    const parent = Object.assign(Object.create(logger) as FastifyBaseLogger, {
      child: (bindings: Record<string, unknown>) => {
        children += 1;
        return logger.child(bindings);
      },
    });
    const log = lazyChildLoggerFactory(parent, { reqId: 'req-1' }, {});
    log.info({ route: '/x' }, 'request');
    log.debug('nothing');
    expect(children).toBe(0);
    expect(lines()).toEqual([]);
    log.error({ code: 'boom' }, 'request failed');
    log.warn('again');
    expect(children).toBe(1);
    expect(lines()).toEqual([
      expect.objectContaining({ reqId: 'req-1', code: 'boom', msg: 'request failed' }),
      expect.objectContaining({ reqId: 'req-1', msg: 'again' }),
    ]);
  });

  it('honours a route level at once', () => {
    const { logger, lines } = capture('warn');
    const log = lazyChildLoggerFactory(logger, { reqId: 'req-2' }, { level: 'info' });
    log.info('shown');
    expect(lines()).toEqual([expect.objectContaining({ reqId: 'req-2', msg: 'shown' })]);
  });
});

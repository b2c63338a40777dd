import { DecryptError, InvalidInputError } from '@tokenwarden/core';
import { describe, expect, it } from 'vitest';
import { AuditWriter } from '../src/audit/audit-writer.ts';
import { generateApiKey, hashApiKey, hashesEqual, newClientKey } from '../src/auth/api-keys.ts';
import { errorReply, ShuttingDownError } from '../src/errors.ts';
import { OwnerCache } from '../src/http/owner-cache.ts';
import { auditEvent, tempSqliteStore } from './helpers.ts';

describe('API keys', () => {
  it('puts the client id in a key and hashes only the secret part', () => {
    const { clientId, apiKey, keyHash } = newClientKey();
    expect(clientId).toMatch(/^cli_[0-9a-f]{20}$/);
    expect(apiKey.startsWith(`tw_${clientId}_`)).toBe(true);
    const secret = apiKey.slice(`tw_${clientId}_`.length);
    expect(secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(hashApiKey(secret)).toBe(keyHash);
    expect(keyHash).not.toContain(secret);
    expect(newClientKey().apiKey).not.toBe(apiKey);
  });

  it('makes admin keys of 256 random bits and compares hashes only when both are SHA-256', () => {
    const key = generateApiKey();
    expect(key).toMatch(/^tw_admin_[A-Za-z0-9_-]{43}$/);
    expect(generateApiKey()).not.toBe(key);
    expect(hashesEqual(hashApiKey(key), hashApiKey(key))).toBe(true);
    expect(hashesEqual(hashApiKey(key), hashApiKey(`${key}x`))).toBe(false);
    expect(hashesEqual(hashApiKey(key), '')).toBe(false);
    expect(hashesEqual('', '')).toBe(false);
  });
});

describe('OwnerCache', () => {
  it('keeps at most its bound, dropping the least recently used', () => {
    const cache = new OwnerCache(3);
    for (const id of ['a', 'b', 'c']) cache.set(id, { owner: id, provider: 'p' });
    expect(cache.get('a')).toEqual({ owner: 'a', provider: 'p' }); // a is now the most recent
    cache.set('d', { owner: 'd', provider: 'p' });
    expect(cache.size).toBe(3);
    expect(cache.get('b')).toBeUndefined();
    expect(cache.get('a')).toBeDefined();
    cache.delete('a');
    expect(cache.get('a')).toBeUndefined();
  });
});

describe('AuditWriter', () => {
  const open = tempSqliteStore();

  it('writes in batches, in order, and everything on close', async () => {
    const service = (await open()).service;
    const append = service.appendAudit.bind(service);
    const batches: number[] = [];
    service.appendAudit = (events) => {
      batches.push(events.length);
      return append(events);
    };
    const writer = new AuditWriter(service, { batchSize: 10, flushIntervalMs: 60_000 });
    // A full batch is written at once, without waiting for the (minute-long) interval.
    for (let i = 0; i < 10; i++) writer.record(auditEvent(i));
    await new Promise((resolve) => setImmediate(resolve));
    expect(batches).toEqual([10]);
    for (let i = 10; i < 25; i++) writer.record(auditEvent(i));
    await writer.close();
    expect(batches.reduce((sum, n) => sum + n, 0)).toBe(25);
    const rows = await service.listAudit({ limit: 100 });
    expect(rows.map((r) => r.requestId).reverse()).toEqual(
      Array.from({ length: 25 }, (_, i) => `r${i}`),
    );
  });

  it('bounds the buffer while the store refuses writes, counting what it drops', async () => {
    const service = (await open()).service;
    service.appendAudit = () => Promise.reject(new Error('down'));
    const problems: string[] = [];
    const writer = new AuditWriter(service, {
      batchSize: 5,
      maxBuffered: 20,
      flushIntervalMs: 1,
      onProblem: ({ kind }) => problems.push(kind),
    });
    for (let i = 0; i < 30; i++) writer.record(auditEvent(i));
    expect(writer.pending).toBe(20);
    expect(writer.dropped).toBe(10);
    await writer.close(1);
    expect(writer.pending).toBe(0);
    expect(writer.dropped).toBe(30);
    expect(problems).toContain('dropped');
  });
});

describe('error replies', () => {
  it('answers a request turned away while closing with shutting_down and Retry-After', () => {
    const answer = errorReply(new ShuttingDownError());
    expect(answer).toEqual({
      status: 503,
      body: { error: 'shutting_down', message: expect.any(String) },
      headers: { 'retry-after': '1' },
    });
  });

  it('never passes on the detail of a server-side failure', () => {
    const answer = errorReply(new DecryptError('key "k9" is not in the key ring'));
    expect(answer.status).toBe(500);
    expect(answer.body.error).toBe('decrypt_failed');
    expect(answer.body.message).not.toContain('k9');
    expect(errorReply(new Error('SELECT secret FROM x')).body).toEqual({
      error: 'internal_error',
      message: 'The server failed unexpectedly.',
    });
  });

  it("answers core's invalid_input as invalid_request, naming the field", () => {
    const answer = errorReply(new InvalidInputError('expires_in', 'must be at most 10 years'));
    expect(answer.status).toBe(400);
    expect(answer.body).toEqual({
      error: 'invalid_request',
      message: 'expires_in: must be at most 10 years',
    });
  });
});

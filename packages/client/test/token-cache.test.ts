import { describe, expect, it } from 'vitest';
import { TokenCache } from '../src/internal/token-cache.ts';

const token = (version: number, expiresAt: number) =>
  Object.freeze({ connectionId: 'c', accessToken: 'at', tokenType: 'Bearer', expiresAt, version });

describe('TokenCache', () => {
  it('holds at most `limit` connections, dropping the oldest idle one', () => {
    const cache = new TokenCache(2);
    const a = cache.slot('a');
    a.flight = Promise.resolve(token(1, 0)); // busy: a request is in flight
    cache.slot('b');
    cache.slot('c');
    expect([...cache.slots.keys()]).toEqual(['a', 'c']);
    expect(cache.slot('a')).toBe(a);
  });

  it('never replaces a token with an older version, nor caches a refused one', () => {
    const slot = new TokenCache(10).slot('a');
    const now = 1_000_000;
    slot.store(token(2, now + 3_600_000), now, 30_000);
    slot.store(token(1, now + 7_200_000), now, 30_000);
    expect(slot.token?.version).toBe(2);
    slot.reject(2);
    expect(slot.token).toBeUndefined();
    slot.store(token(2, now + 3_600_000), now, 30_000);
    expect(slot.token).toBeUndefined();
    slot.store(token(3, now + 3_600_000), now, 30_000);
    expect(slot.usable(now, 0)?.version).toBe(3);
    expect(slot.usable(now + 3_570_000, 0)).toBeUndefined();
    expect(slot.usable(now, 3_600_000)).toBeUndefined();
  });
});

import { describe, expect, it } from 'vitest';
import { TurnReads } from '../src/store/turn-reads.ts';

const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

describe('TurnReads', () => {
  it('makes the reads of one row asked for in one turn once, after the last of them asked', async () => {
    const reads = new TurnReads<{ revoked: boolean }>();
    let row = { revoked: false };
    let count = 0;
    const read = async () => {
      count += 1;
      return { ...row };
    };
    const first = reads.get('k1', read);
    const second = reads.get('k1', read);
    const other = reads.get('k2', read);
    // Written after the first two asked but before their turn ended: they see it, as reads
    // made after they asked must.
    row = { revoked: true };
    expect(count).toBe(0);
    const [a, b, c] = await Promise.all([first, second, other]);
    expect(count).toBe(2);
    expect(a).toBe(b);
    expect(a).toEqual({ revoked: true });
    expect(Object.isFrozen(a)).toBe(true);
    expect(c).not.toBe(a);

    // A later turn reads again: what it answers is never a row read before it asked.
    row = { revoked: false };
    await nextTurn();
    expect(await reads.get('k1', read)).toEqual({ revoked: false });
    expect(count).toBe(3);
  });

  it('gives every caller of the turn the failure of its read, and reads again next turn', async () => {
    const reads = new TurnReads<{ ok: true }>();
    let fail = true;
    const read = async () => {
      if (fail) throw new Error('down');
      return { ok: true as const };
    };
    const both = [reads.get('k', read), reads.get('k', read)];
    for (const result of await Promise.allSettled(both)) {
      expect(result).toMatchObject({ status: 'rejected', reason: { message: 'down' } });
    }
    fail = false;
    expect(await reads.get('k', read)).toEqual({ ok: true });
    expect(await reads.get('missing', async () => undefined)).toBeUndefined();
  });
});

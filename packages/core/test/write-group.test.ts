import { describe, expect, it } from 'vitest';
import { WriteGroup } from '../src/store/write-group.ts';

/** A group whose statement records what it was given, and answers each item with its doubled value. */
function recordingGroup(options: { maxItems?: number; fail?: (items: Item[]) => boolean } = {}) {
  const statements: Item[][] = [];
  let release: (() => void) | undefined;
  let held: Promise<void> | undefined;
  const group = new WriteGroup<Item, number>({
    write: async (items) => {
      statements.push(items);
      await held;
      if (options.fail?.(items)) throw new Error('statement failed');
      return items.map((item) => item.value * 2);
    },
    keyOf: (item) => item.id,
    maxItems: options.maxItems ?? 100,
  });
  return {
    group,
    statements,
    /** Holds the next statements until `go()`: later calls queue behind them. */
    hold() {
      held = new Promise((resolve) => (release = resolve));
    },
    go() {
      held = undefined;
      release?.();
    },
  };
}

interface Item {
  id: string;
  value: number;
}

describe('WriteGroup', () => {
  it('writes the calls of one turn as one statement, each caller getting its own result', async () => {
    const { group, statements } = recordingGroup();
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) => group.add({ id: `c${i}`, value: i })),
    );
    expect(results).toEqual(Array.from({ length: 10 }, (_, i) => i * 2));
    expect(statements).toHaveLength(1);
    expect(statements[0]).toHaveLength(10);
  });

  it('groups the calls made while a statement runs into the next one', async () => {
    const t = recordingGroup();
    t.hold();
    const first = t.group.add({ id: 'a', value: 1 });
    await new Promise((resolve) => setImmediate(resolve)); // the first statement is running
    const later = [t.group.add({ id: 'b', value: 2 }), t.group.add({ id: 'c', value: 3 })];
    t.go();
    expect(await Promise.all([first, ...later])).toEqual([2, 4, 6]);
    expect(t.statements.map((items) => items.map((item) => item.id))).toEqual([['a'], ['b', 'c']]);
  });

  it('never puts one row twice into a statement, nor more than maxItems', async () => {
    const { group, statements } = recordingGroup({ maxItems: 2 });
    await Promise.all([
      group.add({ id: 'a', value: 1 }),
      group.add({ id: 'a', value: 2 }),
      group.add({ id: 'b', value: 3 }),
      group.add({ id: 'c', value: 4 }),
    ]);
    expect(statements.map((items) => items.map((item) => `${item.id}${item.value}`))).toEqual([
      ['a1', 'b3'],
      ['a2', 'c4'],
    ]);
  });

  it('rejects every caller of a failed statement with its error, and goes on with the next', async () => {
    const t = recordingGroup({ fail: (items) => items.some((item) => item.id === 'bad') });
    t.hold();
    const failed = [t.group.add({ id: 'bad', value: 0 }), t.group.add({ id: 'x', value: 1 })];
    await new Promise((resolve) => setImmediate(resolve));
    const next = t.group.add({ id: 'y', value: 5 });
    t.go();
    for (const result of await Promise.allSettled(failed)) {
      expect(result).toMatchObject({ status: 'rejected', reason: { message: 'statement failed' } });
    }
    expect(await next).toBe(10);
  });
});

import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { withStatementCache } from '../src/store/sqlite/statement-cache.ts';

describe('SQLite statement cache', () => {
  let database: Database.Database | undefined;
  afterEach(() => database?.close());

  function open(onWrite?: () => void) {
    database = new Database(':memory:');
    database.exec(
      "create table t (id integer primary key, v text); insert into t values (1, 'a'), (2, 'b')",
    );
    return withStatementCache(database, { max: 4, onWrite });
  }

  it('hands out one prepared statement per SQL text', () => {
    const cache = open();
    const read = cache.prepare('select v from t where id = ?');
    expect(cache.prepare('select v from t where id = ?')).toBe(read);
    expect(read.all([2])).toEqual([{ v: 'b' }]);
    expect(cache.prepare('select v from t where id = ? ')).not.toBe(read);
  });

  it('does not keep long SQL (many-row inserts)', () => {
    const cache = open();
    const values = Array.from({ length: 300 }, (_, i) => `(${i + 10}, 'x')`).join(', ');
    const sql = `insert into t (id, v) values ${values}`;
    const insert = cache.prepare(sql);
    expect(cache.prepare(sql)).not.toBe(insert);
  });

  it('never hands out a statement that is still iterating', () => {
    const cache = open();
    const sql = 'select id from t order by id';
    const cached = cache.prepare(sql);
    const iterating = cached.iterate([]);
    expect(iterating.next().value).toEqual({ id: 1 });
    const other = cache.prepare(sql);
    expect(other).not.toBe(cached);
    expect(other.all([])).toEqual([{ id: 1 }, { id: 2 }]);
    iterating.return?.();
    expect(cache.prepare(sql)).toBe(cached); // free again
  });

  it('stays bounded', () => {
    const cache = open();
    const first = cache.prepare('select 1');
    for (let i = 2; i <= 5; i++) cache.prepare(`select ${i}`);
    expect(cache.prepare('select 1')).not.toBe(first);
  });

  it('tells of every run of a statement that may write, and of no read', () => {
    let writes = 0;
    const cache = open(() => (writes += 1));
    cache.prepare('select v from t where id = ?').all([1]);
    const rows = cache.prepare('select v from t').iterate([]);
    rows.next();
    rows.return?.();
    expect(writes).toBe(0);
    const update = cache.prepare('update t set v = ? where id = ?');
    update.run(['c', 1]);
    update.run(['d', 1]);
    cache.prepare('insert into t (id, v) values (?, ?) returning id').all([3, 'e']);
    expect(writes).toBe(3);
    expect(cache.prepare('select v from t where id = ?').all([1])).toEqual([{ v: 'd' }]);
  });
});

import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { withStatementCache } from '../src/store/sqlite/statement-cache.ts';

describe('SQLite statement cache', () => {
  let database: Database.Database | undefined;
  afterEach(() => database?.close());

  function open() {
    database = new Database(':memory:');
    database.exec(
      "create table t (id integer primary key, v text); insert into t values (1, 'a'), (2, 'b')",
    );
    return withStatementCache(database, 4);
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
});

import Database from 'better-sqlite3';
import {
  CamelCasePlugin,
  Kysely,
  SqliteDialect,
  sql,
  type KyselyPlugin,
  type PluginTransformQueryArgs,
  type PluginTransformResultArgs,
  type QueryResult,
  type UnknownRow,
} from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { compiledOnce, compiledWith } from '../src/store/compiled-once.ts';

interface Db {
  serviceClients: { id: string; keyHash: string; createdAt: number };
}

/** Records the query id of every query it sees, to check that each run gets its own. */
class QueryIds implements KyselyPlugin {
  readonly seen: unknown[] = [];
  transformQuery({ node }: PluginTransformQueryArgs) {
    return node;
  }
  async transformResult({ result, queryId }: PluginTransformResultArgs) {
    this.seen.push(queryId);
    return result as QueryResult<UnknownRow>;
  }
}

function open(plugins: KyselyPlugin[] = []) {
  const database = new Database(':memory:');
  database.exec(
    'create table service_clients (id text primary key, key_hash text, created_at int)',
  );
  database.exec(
    "insert into service_clients values ('a', 'hash-a', 1), ('b', 'hash-b', 2), ('a''--', 'x', 3)",
  );
  return new Kysely<Db>({
    dialect: new SqliteDialect({ database }),
    plugins: [new CamelCasePlugin(), ...plugins],
  });
}

let db: Kysely<Db> | undefined;
afterEach(async () => {
  await db?.destroy();
  db = undefined;
});

describe('compiledOnce', () => {
  it('runs the compiled query with each argument, rows mapped by the plugins', async () => {
    const kysely = (db = open());
    const byId = compiledOnce(kysely, (id) =>
      kysely.selectFrom('serviceClients').selectAll().where('id', '=', id),
    );
    const [a, b, none] = await Promise.all([byId('a'), byId('b'), byId('c')]);
    expect(a.rows).toEqual([{ id: 'a', keyHash: 'hash-a', createdAt: 1 }]);
    expect(b.rows).toEqual([{ id: 'b', keyHash: 'hash-b', createdAt: 2 }]);
    expect(none.rows).toEqual([]);
    // The argument is a bound parameter, never part of the SQL text.
    expect((await byId("a'--")).rows).toEqual([{ id: "a'--", keyHash: 'x', createdAt: 3 }]);
  });

  it('gives each run its own query id', async () => {
    const ids = new QueryIds();
    const kysely = (db = open([ids]));
    const byId = compiledOnce(kysely, (id) =>
      kysely.selectFrom('serviceClients').select('id').where('id', '=', id),
    );
    await byId('a');
    await byId('b');
    expect(ids.seen).toHaveLength(2);
    expect(ids.seen[0]).not.toBe(ids.seen[1]);
  });

  it('fills every place the argument appears', async () => {
    const kysely = (db = open());
    const either = compiledOnce(kysely, (id) =>
      kysely
        .selectFrom('serviceClients')
        .select('keyHash')
        .where((eb) => eb.or([eb('id', '=', id), eb('keyHash', '=', id)])),
    );
    expect((await either('hash-b')).rows).toEqual([{ keyHash: 'hash-b' }]);
  });

  it('refuses a query that does not bind its argument', () => {
    const kysely = (db = open());
    expect(() =>
      compiledOnce(kysely, () => kysely.selectFrom('serviceClients').select('id')),
    ).toThrow(/bound parameter/);
    expect(() =>
      compiledOnce(kysely, (id) =>
        kysely.selectFrom('serviceClients').select('id').where('id', '=', sql.lit(id)),
      ),
    ).toThrow(/bound parameter/);
  });
});

describe('compiledWith', () => {
  it('places each value where its placeholder was, constants kept', async () => {
    const kysely = (db = open());
    const insert = compiledWith(kysely, 4, ([id1, hash1, id2, hash2]) =>
      kysely.insertInto('serviceClients').values([
        { id: id1!, keyHash: hash1!, createdAt: 7 },
        { id: id2!, keyHash: hash2!, createdAt: 8 },
      ]),
    );
    await insert(['x', 'hash-x', 'y', 'hash-y']);
    await insert(['z', 'hash-z', "w'--", 'hash-w']);
    const rows = await kysely
      .selectFrom('serviceClients')
      .selectAll()
      .where('createdAt', '>', 6)
      .orderBy('id')
      .execute();
    expect(rows.map((r) => [r.id, r.keyHash, r.createdAt])).toEqual([
      ["w'--", 'hash-w', 8],
      ['x', 'hash-x', 7],
      ['y', 'hash-y', 8],
      ['z', 'hash-z', 7],
    ]);
  });

  it('refuses a query that leaves an argument out', () => {
    const kysely = (db = open());
    expect(() =>
      compiledWith(kysely, 2, ([id]) =>
        kysely.selectFrom('serviceClients').select('id').where('id', '=', id!),
      ),
    ).toThrow(/bound parameter/);
  });
});

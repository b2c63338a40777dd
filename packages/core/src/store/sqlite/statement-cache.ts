import type BetterSqlite3 from 'better-sqlite3';
import type { SqliteDatabase, SqliteStatement } from 'kysely';

/**
 * Kysely's SQLite driver prepares every query anew, and preparing costs several times what
 * running an indexed read does. The store's queries are a small fixed set (a few vary with a
 * list's length), so prepared statements are kept by SQL text, at most `max` of them.
 *
 * Reusing a statement is safe here: Kysely runs one query at a time on its one connection, and
 * SQLite re-prepares a statement by itself when the schema changes under it.
 */
export function withStatementCache(database: BetterSqlite3.Database, max = 256): SqliteDatabase {
  const statements = new Map<string, SqliteStatement>();
  return {
    close: () => database.close(),
    prepare(sql: string): SqliteStatement {
      let statement = statements.get(sql);
      if (statement === undefined) {
        // Full: start over rather than track use; the hot queries are back after one miss each.
        if (statements.size >= max) statements.clear();
        statement = database.prepare(sql);
        statements.set(sql, statement);
      }
      return statement;
    },
  };
}

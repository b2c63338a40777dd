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
  const statements = new Map<string, BetterSqlite3.Statement>();
  return {
    close: () => database.close(),
    prepare(sql: string): SqliteStatement {
      const cached = statements.get(sql);
      // Busy: a `stream()` is still iterating it; give this query a statement of its own.
      if (cached !== undefined && !cached.busy) return cached;
      const statement = database.prepare(sql);
      // A many-row audit insert is rarely repeated and weighs up to a few hundred kB prepared:
      // kept, a few hundred of them would hold tens of MB.
      if (cached === undefined && sql.length <= MAX_CACHED_SQL_LENGTH) {
        // Full: start over rather than track use; the hot queries are back after one miss each.
        if (statements.size >= max) statements.clear();
        statements.set(sql, statement);
      }
      return statement;
    },
  };
}

const MAX_CACHED_SQL_LENGTH = 2048;

import type BetterSqlite3 from 'better-sqlite3';
import type { SqliteDatabase, SqliteStatement } from 'kysely';

/**
 * Kysely's SQLite driver prepares every query anew, and preparing costs several times what
 * running an indexed read does. The store's queries are a small fixed set (a few vary with a
 * list's length), so prepared statements are kept by SQL text, at most `max` of them.
 *
 * Reusing a statement is safe here: Kysely runs one query at a time on its one connection, and
 * SQLite re-prepares a statement by itself when the schema changes under it.
 *
 * `onWrite` is told each time a statement that may write (one SQLite does not call read-only)
 * runs: the store's read cache counts this connection's writes with it. Statements
 * `uncachedWrite` says write only rows no cache holds (the audit log's appends) are not told:
 * every hand-out's audit row would otherwise send the next hand-out's reads to the database.
 */
export function withStatementCache(
  database: BetterSqlite3.Database,
  options: { max?: number; onWrite?: () => void; uncachedWrite?: (sql: string) => boolean } = {},
): SqliteDatabase {
  const { max = 256, onWrite, uncachedWrite } = options;
  const statements = new Map<string, CachedStatement>();
  return {
    close: () => database.close(),
    prepare(sql: string): SqliteStatement {
      const cached = statements.get(sql);
      // Busy: a `stream()` is still iterating it; give this query a statement of its own.
      if (cached !== undefined && !cached.busy) return cached;
      const prepared = database.prepare(sql);
      const statement =
        onWrite && !prepared.readonly && !uncachedWrite?.(sql)
          ? writing(prepared, onWrite)
          : prepared;
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

type CachedStatement = SqliteStatement & { readonly busy: boolean };

/** A statement that may write: `onWrite` is told each time it runs, before it does. */
function writing(statement: BetterSqlite3.Statement, onWrite: () => void): CachedStatement {
  return {
    reader: statement.reader,
    get busy() {
      return statement.busy;
    },
    all(parameters) {
      onWrite();
      return statement.all(parameters);
    },
    run(parameters) {
      onWrite();
      return statement.run(parameters);
    },
    iterate(parameters) {
      onWrite();
      return statement.iterate(parameters);
    },
  };
}

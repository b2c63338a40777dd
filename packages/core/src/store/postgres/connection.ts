import pg from 'pg';

/** The connection settings every pooled connection and the listener share. */
export interface ConnectionSettings {
  connectionString: string;
  /** Lower-case identifier; becomes the connection's `search_path`. */
  schema: string | undefined;
  statementTimeoutMs: number;
  connectTimeoutMs: number;
}

const INT8_OID = 20;

/**
 * `pg` returns int8 (`bigint`) as strings, since not every int8 fits a JS number. Ours are epoch
 * milliseconds and counters, far below 2^53, and the model wants numbers. Per connection, so
 * other users of `pg` in the process keep the library default.
 */
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID && format !== 'binary'
      ? (value: string) => Number(value)
      : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

/**
 * Client configuration for one Tokenwarden connection. Timeout and schema travel in the startup
 * packet, so they hold from the first statement of every connection, reconnects included, at no
 * extra round trip.
 */
export function clientConfig(
  settings: ConnectionSettings,
  applicationName: string,
): pg.ClientConfig {
  return {
    connectionString: settings.connectionString,
    application_name: applicationName,
    // A statement stuck behind a lock (or a sick server) fails instead of hanging.
    statement_timeout: settings.statementTimeoutMs,
    options: settings.schema === undefined ? undefined : `-c search_path=${settings.schema}`,
    // Bounds connecting, and in a pool also waiting for a free connection.
    connectionTimeoutMillis: settings.connectTimeoutMs,
    // Notices a peer that vanished without closing the socket, eventually.
    keepAlive: true,
    types,
  };
}

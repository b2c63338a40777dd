import { CamelCasePlugin, Kysely, PostgresDialect, type KyselyConfig } from 'kysely';
import pg from 'pg';
import type { Clock } from '../../clock.ts';
import { KyselyStore } from '../kysely-store.ts';
import type { Database } from '../schema.ts';
import { ChangeListener } from './change-listener.ts';
import { clientConfig, type ConnectionSettings } from './connection.ts';
import { HostListPool, parseHostList, type PostgresHost } from './host-selection.ts';
import { CHANGES_CHANNEL } from './notify-trigger.ts';
import { postgresAdapter } from './postgres-adapter.ts';

export interface PostgresStoreOptions {
  /**
   * `postgres://user:password@host:port/database`, as libpq and `pg` read it, or with a host
   * list as libpq reads it: `postgres://user:password@h1:5432,h2:5432/database`. With several
   * hosts the store uses the one that accepts writes (`target_session_attrs=read-write`, the
   * default then; `primary` and `any` are accepted too) and finds the new one after a failover.
   */
  connectionString: string;
  /** Tables live in this schema (created by `migrate()`); default: the server's search_path. */
  schema?: string;
  /** Connections this store opens at most, besides its one listener. Default 10. */
  poolMax?: number;
  /** Server-side limit on every statement. Default 5 s. */
  statementTimeoutMs?: number;
  /** Limit on connecting and on waiting for a free pooled connection. Default 10 s. */
  connectTimeoutMs?: number;
  /** How often a waiter re-reads a credential if no notification came. Default 250 ms. */
  pollIntervalMs?: number;
  /** Times waits and polls; default the system clock (tests inject one they can move). */
  clock?: Clock;
}

/**
 * Postgres, for processes on several machines. Every protocol step is one conditional statement,
 * so row locks make it atomic across the cluster; waiters are woken by LISTEN/NOTIFY.
 *
 * Nothing connects until the first call; a server that cannot be reached makes that call throw.
 */
export function openPostgresStore(options: PostgresStoreOptions): KyselyStore {
  return open(options, undefined);
}

/**
 * For tests (not exported from the package): `openPostgresStore`, calling `onStatement` with the
 * SQL of every statement the store runs on its pool (the listener's LISTEN aside), as it runs it.
 */
export function openObservedPostgresStore(
  options: PostgresStoreOptions,
  onStatement: (sql: string) => void,
): KyselyStore {
  return open(options, (event) => onStatement(event.query.sql));
}

function open(options: PostgresStoreOptions, log: KyselyConfig['log']): KyselyStore {
  const settings = connectionSettings(options);
  const hostList = parseHostList(options.connectionString);
  const config = (host: PostgresHost, applicationName: string) =>
    clientConfig({ ...settings, connectionString: host.connectionString }, applicationName);
  const openPool = (host: PostgresHost, verify: pg.PoolConfig['verify']) => {
    const pool = new pg.Pool({
      ...config(host, 'tokenwarden'),
      max: options.poolMax ?? 10,
      idleTimeoutMillis: 10_000,
      verify,
    });
    // A connection that dies (server restart, terminated backend) emits 'error'. The query using
    // it has already failed with that error, and an unhandled 'error' event would end the process.
    pool.on('error', () => {});
    pool.on('connect', (client) => client.on('error', () => {}));
    return pool;
  };
  const [onlyHost] = hostList.hosts;
  const db = new Kysely<Database>({
    dialect: new PostgresDialect({
      // One host taken as it is, as `pg` alone would; otherwise the host that accepts writes.
      pool:
        hostList.hosts.length === 1 && hostList.target === 'any'
          ? openPool(onlyHost!, undefined)
          : new HostListPool(hostList, openPool),
    }),
    plugins: [new CamelCasePlugin()],
    ...(log && { log }),
  });
  const listener = new ChangeListener(
    hostList.hosts.map((host) => config(host, 'tokenwarden-listener')),
    hostList.target,
    CHANGES_CHANNEL,
  );
  return new KyselyStore(db, {
    ...postgresAdapter(settings.schema, options.pollIntervalMs ?? 250, listener),
    ...(options.clock && { clock: options.clock }),
  });
}

function connectionSettings(options: PostgresStoreOptions): ConnectionSettings {
  const { schema } = options;
  // It travels unquoted in the startup packet and is folded to lower case by the server.
  if (schema !== undefined && !/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) {
    throw new TypeError(
      `schema must be a lower-case SQL identifier, got ${JSON.stringify(schema)}`,
    );
  }
  return {
    connectionString: options.connectionString,
    schema,
    statementTimeoutMs: options.statementTimeoutMs ?? 5_000,
    connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
  };
}

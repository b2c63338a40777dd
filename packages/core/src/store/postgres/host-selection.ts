import type { PostgresPool, PostgresPoolClient } from 'kysely';
import pg from 'pg';
import { InvalidInputError } from '../../errors.ts';

/**
 * What a session must be to be used, as libpq's `target_session_attrs` says it. Other values
 * (read-only, standby, prefer-standby) make no sense for a store that writes.
 */
export type TargetSession = 'any' | 'read-write' | 'primary';

/** One host of a connection string's host list, and that string narrowed to this host. */
export interface PostgresHost {
  /** `host:port`, safe to print. */
  readonly label: string;
  readonly connectionString: string;
}

export interface HostList {
  readonly hosts: readonly PostgresHost[];
  readonly target: TargetSession;
}

const SCHEME = /^(postgres(?:ql)?:\/\/)/i;

/**
 * Splits libpq's multi-host URL, `postgres://user:pw@h1:5432,h2:5433/db?target_session_attrs=
 * read-write`, into one connection string per host, which `pg` (it reads only single-host
 * URLs) can open. The target defaults to `read-write` for several hosts (libpq's default, `any`,
 * would let a store land on a standby it cannot write to) and to `any` for one, as before.
 */
export function parseHostList(connectionString: string): HostList {
  const scheme = SCHEME.exec(connectionString)?.[1];
  if (scheme === undefined) {
    // Not a URL (a socket path, say): `pg` reads it as it always has.
    return { hosts: [{ label: 'database', connectionString }], target: 'any' };
  }
  const rest = connectionString.slice(scheme.length);
  const authorityEnd = rest.search(/[/?#]/);
  const authority = authorityEnd < 0 ? rest : rest.slice(0, authorityEnd);
  const tail = authorityEnd < 0 ? '' : rest.slice(authorityEnd);
  const at = authority.lastIndexOf('@');
  const userinfo = at < 0 ? '' : authority.slice(0, at + 1);
  const { query, target: named } = takeTargetSession(tail);
  const hosts = authority
    .slice(at + 1)
    .split(',')
    .map((hostPort) => {
      const label = checkedHost(hostPort);
      return { label, connectionString: `${scheme}${userinfo}${hostPort}${query}` };
    });
  const target = named ?? (hosts.length > 1 ? 'read-write' : 'any');
  return { hosts, target };
}

/** `host`, `host:port`, `[v6]` or `[v6]:port`; returns it for messages (no userinfo in it). */
function checkedHost(hostPort: string): string {
  const parsed = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]+)(?::(\d{1,5}))?$/.exec(hostPort);
  const port = parsed?.[2] === undefined ? undefined : Number(parsed[2]);
  if (!parsed || (port !== undefined && (port < 1 || port > 65535))) {
    throw new InvalidInputError(
      'connectionString',
      `host list entry ${JSON.stringify(hostPort)} is not host[:port] (hosts are separated by commas)`,
    );
  }
  return hostPort;
}

/** The URL's tail without `target_session_attrs`, and its value. */
function takeTargetSession(tail: string): { query: string; target: TargetSession | undefined } {
  const queryStart = tail.indexOf('?');
  if (queryStart < 0) return { query: tail, target: undefined };
  let target: TargetSession | undefined;
  const kept = tail
    .slice(queryStart + 1)
    .split('&')
    .filter((pair) => {
      const [key = '', value = ''] = pair.split('=').map((part) => decodeURIComponent(part));
      if (key !== 'target_session_attrs') return true;
      if (value !== 'any' && value !== 'read-write' && value !== 'primary') {
        throw new InvalidInputError(
          'connectionString',
          `target_session_attrs=${value} is not supported: the store writes, so use read-write ` +
            '(the default for several hosts), primary or any',
        );
      }
      target = value;
      return false;
    });
  const path = tail.slice(0, queryStart);
  return { query: kept.length > 0 ? `${path}?${kept.join('&')}` : path, target };
}

/**
 * libpq's checks of a new session: `read-write` asks `transaction_read_only` (off on a primary,
 * unless it was made read-only by configuration), `primary` asks `pg_is_in_recovery()`.
 */
export async function sessionAccepted(client: pg.ClientBase, target: TargetSession) {
  if (target === 'any') return true;
  if (target === 'read-write') {
    const { rows } = await client.query<{ transaction_read_only: string }>(
      'show transaction_read_only',
    );
    return rows[0]?.transaction_read_only === 'off';
  }
  const { rows } = await client.query<{ recovery: boolean }>(
    'select pg_is_in_recovery() as recovery',
  );
  return rows[0]?.recovery === false;
}

/** SQLSTATE of a write refused because the session or the server is read-only. */
const READ_ONLY_SQL_TRANSACTION = '25006';

/**
 * A pool over a host list: one `pg.Pool` per host, each checking its new connections as
 * `target` asks. `connect()` tries the host that last accepted first, then the others in order,
 * as libpq does; a connection refused, or one that lands on a server in the wrong role (a standby,
 * or a former primary back as one), moves on to the next host. After a failover the old
 * primary's connections fail once (the store reports `store_unavailable` and the caller
 * retries) and are dropped by `pg`; the next `connect()` finds the new primary.
 */
export class HostListPool implements PostgresPool {
  readonly #list: HostList;
  readonly #openPool: (host: PostgresHost, verify: pg.PoolConfig['verify']) => pg.Pool;
  readonly #pools = new Map<number, pg.Pool>();
  /** The host that accepted last: tried first. */
  #preferred = 0;

  constructor(
    list: HostList,
    openPool: (host: PostgresHost, verify: pg.PoolConfig['verify']) => pg.Pool,
  ) {
    this.#list = list;
    this.#openPool = openPool;
  }

  async connect(): Promise<PostgresPoolClient> {
    const { hosts } = this.#list;
    const refusals: string[] = [];
    for (let i = 0; i < hosts.length; i++) {
      const index = (this.#preferred + i) % hosts.length;
      try {
        const client = await this.#pool(index).connect();
        this.#preferred = index;
        return this.#guarded(client, index);
      } catch (error) {
        refusals.push(`${hosts[index]!.label}: ${(error as Error).message}`);
      }
    }
    throw new Error(
      `no Postgres host accepts ${this.#list.target} sessions (${refusals.join('; ')})`,
    );
  }

  async end(): Promise<void> {
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    await Promise.all(pools.map((pool) => pool.end()));
  }

  #pool(index: number): pg.Pool {
    let pool = this.#pools.get(index);
    if (pool === undefined) {
      const { target } = this.#list;
      pool = this.#openPool(this.#list.hosts[index]!, (client, done) => {
        sessionAccepted(client, target).then(
          (accepted) => done(accepted ? undefined : new Error(`not a ${target} session`)),
          (error: Error) => done(error),
        );
      });
      this.#pools.set(index, pool);
    }
    return pool;
  }

  /**
   * A server whose sessions turned read-only under us (demoted, or made read-only by an
   * operator): its pool is dropped with every connection in it, and this client is destroyed on
   * release instead of going back into the pool.
   */
  #guarded(client: pg.PoolClient, index: number): PostgresPoolClient {
    let readOnly = false;
    const onError = (error: unknown): never => {
      if ((error as { code?: unknown }).code === READ_ONLY_SQL_TRANSACTION && !readOnly) {
        readOnly = true;
        const pool = this.#pools.get(index);
        this.#pools.delete(index);
        void pool?.end().catch(() => undefined);
      }
      throw error;
    };
    return {
      // Kysely passes SQL and parameters, or a cursor (streaming), which is passed on as is.
      query: ((queryOrCursor: unknown, parameters?: readonly unknown[]) =>
        typeof queryOrCursor === 'string'
          ? client.query(queryOrCursor, parameters as unknown[]).catch(onError)
          : client.query(
              queryOrCursor as pg.Submittable,
            )) as unknown as PostgresPoolClient['query'],
      release: () => client.release(readOnly || undefined),
    };
  }
}

import { sql, type Kysely } from 'kysely';
import type { StoreAdapter } from './kysely-store.ts';
import type { Database } from './schema.ts';

/** A pending connect flow, as stored: the PKCE verifier sealed, the state only as a hash. */
export interface ConnectSessionRecord {
  stateHash: string;
  provider: string;
  owner: string;
  scopes: string[];
  redirectUri: string;
  callbackUri: string;
  codeVerifier: string;
  connectionId: string | null;
  createdAt: number;
  expiresAt: number;
}

export type NewConnectSession = Omit<ConnectSessionRecord, 'createdAt' | 'expiresAt'> & {
  /** Lifetime from the database clock's now. */
  ttlMs: number;
};

/**
 * Where the connect flow keeps what it needs between the authorization request and the
 * callback. `take` is the single use: it deletes the session in the statement that reads it.
 */
export interface ConnectSessionStore {
  /** Stores a session; also drops the expired ones, so the table does not grow. */
  insertConnectSession(session: NewConnectSession): Promise<ConnectSessionRecord>;
  /** Deletes and returns the session, if it exists and has not expired (database clock). */
  takeConnectSession(stateHash: string): Promise<ConnectSessionRecord | undefined>;
}

export class KyselyConnectSessionStore implements ConnectSessionStore {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly adapter: StoreAdapter,
  ) {}

  async insertConnectSession(session: NewConnectSession): Promise<ConnectSessionRecord> {
    const now = this.adapter.now;
    await this.db.deleteFrom('connectSessions').where('expiresAt', '<=', now).execute();
    const row = await this.db
      .insertInto('connectSessions')
      .values({
        stateHash: session.stateHash,
        provider: session.provider,
        owner: session.owner,
        scopes: JSON.stringify(session.scopes),
        redirectUri: session.redirectUri,
        callbackUri: session.callbackUri,
        codeVerifier: session.codeVerifier,
        connectionId: session.connectionId,
        createdAt: now,
        expiresAt: sql<number>`${now} + ${Math.round(session.ttlMs)}`,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    return toSession(row);
  }

  async takeConnectSession(stateHash: string): Promise<ConnectSessionRecord | undefined> {
    // Expired or not, the session is gone after this; only an unexpired one is returned.
    const row = await this.db
      .deleteFrom('connectSessions')
      .where('stateHash', '=', stateHash)
      .returningAll()
      .returning(this.adapter.now.as('dbNow'))
      .executeTakeFirst();
    if (!row || Number(row.expiresAt) <= Number(row.dbNow)) return undefined;
    return toSession(row);
  }
}

function toSession(row: Record<keyof ConnectSessionRecord, unknown>): ConnectSessionRecord {
  return {
    stateHash: row.stateHash as string,
    provider: row.provider as string,
    owner: row.owner as string,
    scopes: JSON.parse(row.scopes as string) as string[],
    redirectUri: row.redirectUri as string,
    callbackUri: row.callbackUri as string,
    codeVerifier: row.codeVerifier as string,
    connectionId: row.connectionId as string | null,
    createdAt: Number(row.createdAt),
    expiresAt: Number(row.expiresAt),
  };
}

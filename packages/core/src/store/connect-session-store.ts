import { type Kysely, type Selectable } from 'kysely';
import type { ConnectSessionsTable, Database } from './schema.ts';
import { later, type StoreAdapter } from './store-adapter.ts';

/** A pending connect flow, as stored (`connect_sessions` table), its scopes parsed. */
export type ConnectSessionRecord = Omit<Selectable<ConnectSessionsTable>, 'scopes'> & {
  scopes: string[];
};

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
        expiresAt: later(now, session.ttlMs),
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
    if (!row || row.expiresAt <= row.dbNow) return undefined;
    return toSession(row);
  }
}

function toSession({
  scopes,
  ...row
}: Selectable<ConnectSessionsTable> & { dbNow?: number }): ConnectSessionRecord {
  const { dbNow: _, ...session } = row;
  return { ...session, scopes: JSON.parse(scopes) as string[] };
}

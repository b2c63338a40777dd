// What the console's API (the server's /v1/console/*) answers: one declaration for the page
// that reads it and the server that writes it.

/** `POST` and `GET /v1/console/session`. */
export interface SessionReply {
  csrf_token: string;
  expires_at: string;
}

/** The fields of a connection (GET /v1/connections' view) that the table shows. */
export interface ConsoleConnection {
  id: string;
  provider: string;
  owner: string;
  status: string;
  status_reason: string | null;
  access_expires_at: string;
  refresh_expires_at: string | null;
  has_refresh_token: boolean;
  failures: number;
  last_error: string | null;
  /** The newest successful refresh in the audit log, or null. */
  last_refresh_at: string | null;
  scope: string | null;
  created_at: string;
  updated_at: string;
}

/** `GET /v1/console/connections`: one page, by id. */
export interface ConnectionPage {
  connections: ConsoleConnection[];
  next_cursor: string | null;
}

/** One entry of `GET /v1/console/connections/{id}/timeline`, newest first. */
export interface TimelineEntry {
  action: string;
  actor: string;
  outcome: string;
  /** The newest event of the entry, and the oldest when it folds several. */
  at: string;
  first_at: string;
  count: number;
}

/** A service client whose grants cover a connection, and what they allow on it. */
export interface ConnectionGrant {
  client_id: string;
  client_name: string;
  actions: string[];
}

/** `GET /v1/console/connections/{id}`. */
export interface ConnectionDetail {
  connection: ConsoleConnection;
  grants: ConnectionGrant[];
}

/** `GET /v1/console/overview`: the store's counts, the audit log's refreshes, this process's breakers. */
export interface Overview {
  generated_at: string;
  counts: { provider: string; status: string; count: number }[];
  /** Refreshes per provider, outcome and minute since `since`, oldest first. */
  refreshes: {
    since: string;
    bucket_seconds: number;
    buckets: { provider: string; outcome: string; at: string; count: number }[];
  };
  breakers: {
    provider: string;
    state: 'closed' | 'open' | 'half_open';
    consecutive_failures: number;
    refusing_for_ms: number;
  }[];
  scheduler: { overdue: number; lag_ms: number };
  /** Active connections whose refresh token (or, without one, access token) ends within 24 h. */
  ending_soon: ConsoleConnection[];
}

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
  failures: number;
  last_error: string | null;
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

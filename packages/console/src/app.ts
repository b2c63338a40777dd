/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
// The console's one script. Every value from the API is written with textContent, never as
// HTML; the page's CSP allows no inline script besides. The admin key is sent once, at sign-in,
// and kept nowhere: the session lives in an HttpOnly cookie, its CSRF token in this module.

import type { ConnectionPage, ConsoleConnection, SessionReply, TimelineEntry } from './api.ts';

class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const element = <T extends HTMLElement>(id: string): T => {
  const found = document.getElementById(id);
  if (!found) throw new Error(`the page has no #${id}`);
  return found as T;
};

let csrfToken: string | undefined;
let expiryTimer: number | undefined;

/** A call to the console's API: the session cookie always, the CSRF token on every write. */
async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET' && csrfToken !== undefined) headers['x-csrf-token'] = csrfToken;
  const response = await fetch(path, {
    method,
    headers,
    credentials: 'same-origin',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 401 && path !== '/v1/console/session')
    showSignIn('Your session ended: sign in again.');
  if (!response.ok) {
    const problem = (await response.json().catch(() => ({}))) as { message?: string };
    throw new ApiError(response.status, problem.message ?? `HTTP ${response.status}`);
  }
  return (response.status === 204 ? undefined : await response.json()) as T;
}

function startSession(session: SessionReply): void {
  csrfToken = session.csrf_token;
  window.clearTimeout(expiryTimer);
  expiryTimer = window.setTimeout(
    () => showSignIn('Your session expired: sign in again.'),
    Math.max(0, Date.parse(session.expires_at) - Date.now()),
  );
  element('sign-in').hidden = true;
  element('sign-out').hidden = false;
  void loadConnections();
  showRoute();
}

/** `#connection=<id>` shows that connection's timeline; anything else the table. */
function showRoute(): void {
  if (csrfToken === undefined) return;
  const id = /^#connection=(.+)$/.exec(location.hash)?.[1];
  element('connections').hidden = id !== undefined;
  element('timeline').hidden = id === undefined;
  if (id !== undefined) void loadTimeline(decodeURIComponent(id));
}

async function loadTimeline(id: string): Promise<void> {
  element('timeline-title').textContent = id;
  const list = element('timeline-entries');
  list.replaceChildren();
  const error = element('timeline-error');
  try {
    const { entries } = await api<{ entries: TimelineEntry[] }>(
      'GET',
      `/v1/console/connections/${encodeURIComponent(id)}/timeline`,
    );
    error.textContent = entries.length === 0 ? 'Nothing recorded yet.' : '';
    list.replaceChildren(...entries.map(timelineItem));
  } catch (problem) {
    error.textContent = problem instanceof Error ? problem.message : String(problem);
  }
}

function timelineItem(entry: TimelineEntry): HTMLLIElement {
  const item = document.createElement('li');
  const folded = entry.count > 1 ? ` (${entry.count} times since ${relative(entry.first_at)})` : '';
  item.textContent = `${relative(entry.at)}: ${entry.action} by ${entry.actor}, ${entry.outcome}${folded}`;
  item.title = entry.at;
  return item;
}

window.addEventListener('hashchange', showRoute);

function showSignIn(message = ''): void {
  csrfToken = undefined;
  window.clearTimeout(expiryTimer);
  element('connections').hidden = true;
  element('timeline').hidden = true;
  element('sign-out').hidden = true;
  element('sign-in').hidden = false;
  element('sign-in-error').textContent = message;
  element('admin-key').focus();
}

// Keyset pagination: the cursors of the pages before this one, and the next page's.
const cursors: string[] = [];
let nextCursor: string | null = null;

async function loadConnections(cursor?: string): Promise<void> {
  const filters = new FormData(element<HTMLFormElement>('filters'));
  const query = new URLSearchParams({ limit: '50' });
  for (const name of ['status', 'provider', 'owner']) {
    const value = String(filters.get(name) ?? '').trim();
    if (value) query.set(name, value);
  }
  if (cursor) query.set('cursor', cursor);
  const error = element('connections-error');
  try {
    const page = await api<ConnectionPage>('GET', `/v1/console/connections?${query}`);
    error.textContent = '';
    nextCursor = page.next_cursor;
    element<HTMLButtonElement>('next-page').disabled = nextCursor === null;
    element<HTMLButtonElement>('first-page').disabled = cursors.length === 0;
    element('connection-rows').replaceChildren(...page.connections.map(connectionRow));
  } catch (problem) {
    error.textContent = problem instanceof Error ? problem.message : String(problem);
  }
}

function connectionRow(connection: ConsoleConnection): HTMLTableRowElement {
  const row = document.createElement('tr');
  row.dataset.connectionId = connection.id;
  const cells: [string, string?][] = [
    [connection.owner],
    [connection.provider],
    [connection.status, `status-${connection.status}`],
    [relative(connection.access_expires_at)],
    [connection.refresh_expires_at === null ? '—' : relative(connection.refresh_expires_at)],
    [relative(connection.updated_at)],
    [String(connection.failures)],
    [connection.last_error ?? '—'],
    [connection.status_reason ?? '—'],
  ];
  for (const [text, className] of cells) {
    const cell = row.insertCell();
    cell.textContent = text;
    if (className) cell.className = className;
  }
  // The owner opens the connection's timeline.
  const link = document.createElement('a');
  link.href = `#connection=${encodeURIComponent(connection.id)}`;
  link.textContent = connection.owner;
  row.cells[0]!.replaceChildren(link);
  return row;
}

const relativeFormat = new Intl.RelativeTimeFormat('en', { numeric: 'auto' });
const UNITS: [Intl.RelativeTimeFormatUnit, number][] = [
  ['day', 86_400_000],
  ['hour', 3_600_000],
  ['minute', 60_000],
  ['second', 1_000],
];

/** "in 5 minutes", "2 hours ago": the time as an operator reads it; the exact one on hover. */
function relative(iso: string): string {
  const delta = Date.parse(iso) - Date.now();
  const [unit, size] = UNITS.find(([, ms]) => Math.abs(delta) >= ms) ?? UNITS[UNITS.length - 1]!;
  return relativeFormat.format(Math.round(delta / size), unit);
}

element<HTMLFormElement>('sign-in-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const input = element<HTMLInputElement>('admin-key');
  const key = input.value;
  input.value = '';
  api<SessionReply>('POST', '/v1/console/session', { admin_key: key })
    .then(startSession)
    .catch((problem: unknown) => showSignIn(problem instanceof Error ? problem.message : ''));
});

element('sign-out').addEventListener('click', () => {
  void api('DELETE', '/v1/console/session')
    .catch(() => undefined)
    .then(() => showSignIn('Signed out.'));
});

element<HTMLFormElement>('filters').addEventListener('submit', (event) => {
  event.preventDefault();
  cursors.length = 0;
  void loadConnections();
});

element('next-page').addEventListener('click', () => {
  if (nextCursor === null) return;
  cursors.push(nextCursor);
  void loadConnections(nextCursor);
});

element('first-page').addEventListener('click', () => {
  cursors.length = 0;
  void loadConnections();
});

// A reload keeps the session (the cookie) but not the CSRF token: the server says it again.
api<SessionReply>('GET', '/v1/console/session').then(startSession, () => showSignIn());

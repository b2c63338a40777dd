/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
// The connections table: filters and search on the server, keyset pages of 50.
import type { ConnectionPage, ConsoleConnection } from './api.ts';
import { element, h, report, time } from './dom.ts';
import { api } from './http.ts';

const FILTERS = ['search', 'status', 'provider', 'owner', 'ends_within'];

// Keyset pagination: the cursors of the pages before this one, and the next page's.
const cursors: string[] = [];
let nextCursor: string | null = null;

/** `#connections` or `#connections?ends_within=86400`: the query fills in the filters. */
export function showConnections(query: URLSearchParams): void {
  const form = element<HTMLFormElement>('filters');
  if ([...query].length > 0) {
    form.reset();
    for (const [name, value] of query) {
      const field = form.elements.namedItem(name);
      if (field instanceof HTMLInputElement || field instanceof HTMLSelectElement) {
        field.value = value;
      }
    }
  }
  cursors.length = 0;
  void loadConnections();
}

async function loadConnections(cursor?: string): Promise<void> {
  const filters = new FormData(element<HTMLFormElement>('filters'));
  const query = new URLSearchParams({ limit: '50' });
  for (const name of FILTERS) {
    const value = String(filters.get(name) ?? '').trim();
    if (value) query.set(name, value);
  }
  if (cursor) query.set('cursor', cursor);
  try {
    const page = await api<ConnectionPage>('GET', `/v1/console/connections?${query}`);
    report('connections-error');
    nextCursor = page.next_cursor;
    element<HTMLButtonElement>('next-page').disabled = nextCursor === null;
    element<HTMLButtonElement>('first-page').disabled = cursors.length === 0;
    const rows = page.connections.map(connectionRow);
    element('connection-rows').replaceChildren(
      ...(rows.length > 0
        ? rows
        : [h('tr', {}, h('td', { colSpan: 9 }, 'No connection matches.'))]),
    );
  } catch (problem) {
    report('connections-error', problem);
  }
}

function connectionRow(connection: ConsoleConnection): HTMLTableRowElement {
  const cells: [Node | string, string?][] = [
    // The owner opens the connection's page.
    [h('a', { href: `#connection=${encodeURIComponent(connection.id)}` }, connection.owner)],
    [connection.provider],
    [connection.status, `status-${connection.status}`],
    [time(connection.access_expires_at)],
    [
      connection.has_refresh_token
        ? time(connection.refresh_expires_at, 'not known')
        : 'no refresh token',
    ],
    [time(connection.last_refresh_at, 'never')],
    [String(connection.failures)],
    [connection.last_error ?? '—'],
    [connection.status_reason ?? '—'],
  ];
  return h(
    'tr',
    { 'data-connection-id': connection.id },
    ...cells.map(([content, className]) => h('td', { className }, content)),
  );
}

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

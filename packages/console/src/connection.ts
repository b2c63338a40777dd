/// <reference lib="dom" />
// One connection: its facts, the service clients whose grants cover it, its timeline from the
// audit log, and the two things an operator does to it: start a re-authorization (a connect
// session for the same owner and provider, keeping the id) and revoke-and-delete.
import type { ConnectionDetail, ConsoleConnection, TimelineEntry } from './api.ts';
import { afterConfirmation, element, h, relative, report, row, time } from './dom.ts';
import { ADMIN_API, api } from './http.ts';

let shown: ConsoleConnection | undefined;

export async function showConnection(id: string): Promise<void> {
  shown = undefined;
  element('connection-title').textContent = id;
  element('reauthorize-result').hidden = true;
  for (const list of ['connection-facts', 'connection-grants', 'timeline-entries']) {
    element(list).replaceChildren();
  }
  try {
    const detail = await api<ConnectionDetail>(
      'GET',
      `/v1/console/connections/${encodeURIComponent(id)}`,
    );
    report('connection-error');
    render(detail);
  } catch (problem) {
    report('connection-error', problem);
    return;
  }
  await loadTimeline(id);
}

function render({ connection, grants }: ConnectionDetail): void {
  shown = connection;
  element('connection-title').textContent = `${connection.owner} (${connection.provider})`;
  const facts: [string, Node | string][] = [
    ['Id', connection.id],
    [
      'Status',
      connection.status + (connection.status_reason ? `: ${connection.status_reason}` : ''),
    ],
    ['Access token expires', time(connection.access_expires_at)],
    [
      'Refresh token expires',
      connection.has_refresh_token
        ? time(connection.refresh_expires_at, 'not known')
        : 'no refresh token',
    ],
    ['Last refresh', time(connection.last_refresh_at, 'never')],
    ['Consecutive failures', String(connection.failures)],
    ['Last error', connection.last_error ?? '—'],
    ['Scope', connection.scope ?? '—'],
    ['Created', time(connection.created_at)],
  ];
  element('connection-facts').replaceChildren(
    ...facts.flatMap(([term, value]) => [h('dt', {}, term), h('dd', {}, value)]),
  );
  element('connection-grants').replaceChildren(
    ...(grants.length === 0
      ? [row(['No service client may use this connection.', ''])]
      : grants.map((grant) =>
          row([`${grant.client_name} (${grant.client_id})`, grant.actions.join(', ')]),
        )),
  );
}

async function loadTimeline(id: string): Promise<void> {
  try {
    const { entries } = await api<{ entries: TimelineEntry[] }>(
      'GET',
      `/v1/console/connections/${encodeURIComponent(id)}/timeline`,
    );
    element('timeline-error').textContent = entries.length === 0 ? 'Nothing recorded yet.' : '';
    element('timeline-entries').replaceChildren(...entries.map(timelineItem));
  } catch (problem) {
    report('timeline-error', problem);
  }
}

function timelineItem(entry: TimelineEntry): HTMLLIElement {
  const folded = entry.count > 1 ? ` (${entry.count} times since ${relative(entry.first_at)})` : '';
  return h(
    'li',
    { title: entry.at },
    `${relative(entry.at)}: ${entry.action} by ${entry.actor}, ${entry.outcome}${folded}`,
  );
}

element('reauthorize').addEventListener('click', () => {
  if (!shown) return;
  const { id, owner, provider } = shown;
  // The provider sends the owner's browser back to the console, which opens this connection.
  const body = { provider, owner, connection_id: id, redirect_uri: `${location.origin}/console` };
  api<{ authorize_url: string; expires_at: string }>(
    'POST',
    `${ADMIN_API}/v1/connect/sessions`,
    body,
  )
    .then((started) => {
      report('connection-error');
      element('reauthorize-result').hidden = false;
      element('reauthorize-expiry').textContent = new Date(started.expires_at).toLocaleTimeString();
      const link = element<HTMLInputElement>('reauthorize-link');
      link.value = started.authorize_url;
      link.focus();
      link.select();
    })
    .catch((problem: unknown) => report('connection-error', problem));
});

element('delete-connection').addEventListener('click', () => {
  if (!shown) return;
  const { id, owner, provider } = shown;
  const question = {
    title: 'Revoke and delete this connection?',
    text:
      `The tokens of ${owner} at ${provider} are revoked at the provider (where it supports ` +
      'that) and deleted here. Workers asking for them get not_found. This cannot be undone.',
    confirm: 'Revoke and delete',
  };
  afterConfirmation(question, 'connection-error', async () => {
    await api('DELETE', `${ADMIN_API}/v1/connections/${encodeURIComponent(id)}`);
    location.hash = '#connections';
  });
});

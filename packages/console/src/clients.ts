/// <reference lib="dom" />
// Service clients: the list, one grant's worth of a new client (its API key shown once, with a
// copy button), and revoke.
import { afterConfirmation, element, h, report, row, showOnce, time } from './dom.ts';
import { ADMIN_API, api } from './http.ts';

interface Grant {
  owner: string;
  provider: string;
  actions: string[];
}

interface ClientView {
  id: string;
  name: string;
  grants: Grant[];
  created_at: string;
  revoked_at: string | null;
}

export async function showClients(): Promise<void> {
  try {
    const { clients } = await api<{ clients: ClientView[] }>('GET', `${ADMIN_API}/v1/clients`);
    report('clients-error');
    element('client-rows').replaceChildren(
      ...(clients.length === 0 ? [row(['No service client yet.'])] : clients.map(clientRow)),
    );
  } catch (problem) {
    report('clients-error', problem);
  }
}

function clientRow(client: ClientView): HTMLTableRowElement {
  const grants = client.grants
    .map((grant) => `${grant.actions.join(', ')} on ${grant.owner} × ${grant.provider}`)
    .join('; ');
  const revoke =
    client.revoked_at === null
      ? h(
          'button',
          { type: 'button', className: 'danger', onclick: () => revokeClient(client) },
          'Revoke',
        )
      : '';
  if (revoke) revoke.setAttribute('aria-label', `Revoke ${client.name}`);
  return row(
    [
      client.name,
      client.id,
      grants || 'none',
      time(client.created_at),
      time(client.revoked_at, 'no'),
      revoke,
    ],
    { 'data-client-id': client.id },
  );
}

function revokeClient(client: ClientView): void {
  const question = {
    title: `Revoke ${client.name}?`,
    text: `Its API key is refused from its next request on, on every replica. This cannot be undone.`,
    confirm: 'Revoke client',
  };
  afterConfirmation(question, 'clients-error', async () => {
    await api('DELETE', `${ADMIN_API}/v1/clients/${encodeURIComponent(client.id)}`);
    await showClients();
  });
}

element<HTMLFormElement>('client-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const form = event.target as HTMLFormElement;
  const fields = new FormData(form);
  const text = (name: string) => String(fields.get(name) ?? '').trim();
  const actions = fields.getAll('actions').map(String);
  const grants =
    actions.length === 0 ? [] : [{ owner: text('owner'), provider: text('provider'), actions }];
  api<ClientView & { api_key: string }>('POST', `${ADMIN_API}/v1/clients`, {
    name: text('name'),
    grants,
  })
    .then(async (created) => {
      report('clients-error');
      form.reset();
      element('new-key-name').textContent = created.name;
      showOnce('new-key', 'new-key-value', created.api_key);
      await showClients();
    })
    .catch((problem: unknown) => report('clients-error', problem));
});

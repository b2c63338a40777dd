/// <reference lib="dom" />
// Webhook endpoints: the list, a new one (its signing secret shown once), delete, and an
// endpoint's recent deliveries with redeliver.
import { afterConfirmation, element, h, report, row, showOnce, time } from './dom.ts';
import { ADMIN_API, api } from './http.ts';

interface EndpointView {
  id: string;
  url: string;
  events: string[] | null;
  description: string | null;
  created_at: string;
}

interface DeliveryView {
  id: string;
  event_type: string;
  connection_id: string;
  status: string;
  attempts: number;
  last_status?: number | null;
  last_error?: string | null;
  created_at: string;
}

let open: EndpointView | undefined;

export async function showWebhooks(): Promise<void> {
  try {
    const { webhooks } = await api<{ webhooks: EndpointView[] }>('GET', `${ADMIN_API}/v1/webhooks`);
    report('webhooks-error');
    element('webhook-rows').replaceChildren(
      ...(webhooks.length === 0 ? [row(['No endpoint yet.'])] : webhooks.map(endpointRow)),
    );
    if (open && !webhooks.some((endpoint) => endpoint.id === open!.id)) open = undefined;
    element('deliveries').hidden = open === undefined;
    if (open) await showDeliveries(open);
  } catch (problem) {
    report('webhooks-error', problem);
  }
}

function endpointRow(endpoint: EndpointView): HTMLTableRowElement {
  const deliveries = h(
    'button',
    { type: 'button', onclick: () => void showDeliveries(endpoint) },
    'Deliveries',
  );
  deliveries.setAttribute('aria-label', `Deliveries to ${endpoint.url}`);
  const remove = h(
    'button',
    { type: 'button', className: 'danger', onclick: () => deleteEndpoint(endpoint) },
    'Delete',
  );
  remove.setAttribute('aria-label', `Delete ${endpoint.url}`);
  return row([
    endpoint.url,
    endpoint.events?.join(', ') ?? 'all',
    endpoint.description ?? '—',
    time(endpoint.created_at),
    h('span', { className: 'actions' }, deliveries, remove),
  ]);
}

async function showDeliveries(endpoint: EndpointView): Promise<void> {
  open = endpoint;
  element('deliveries').hidden = false;
  element('deliveries-url').textContent = endpoint.url;
  try {
    const { deliveries } = await api<{ deliveries: DeliveryView[] }>(
      'GET',
      `${ADMIN_API}/v1/webhooks/${encodeURIComponent(endpoint.id)}/deliveries?limit=50`,
    );
    element('delivery-rows').replaceChildren(
      ...(deliveries.length === 0
        ? [row(['Nothing delivered yet.'])]
        : deliveries.map((delivery) => deliveryRow(endpoint, delivery))),
    );
  } catch (problem) {
    report('webhooks-error', problem);
  }
}

function deliveryRow(endpoint: EndpointView, delivery: DeliveryView): HTMLTableRowElement {
  const again = h(
    'button',
    {
      type: 'button',
      onclick: () => {
        api(
          'POST',
          `${ADMIN_API}/v1/webhooks/${encodeURIComponent(endpoint.id)}/deliveries/${encodeURIComponent(delivery.id)}/redeliver`,
        )
          .then(() => showDeliveries(endpoint))
          .catch((problem: unknown) => report('webhooks-error', problem));
      },
    },
    'Redeliver',
  );
  again.setAttribute('aria-label', `Redeliver ${delivery.event_type} ${delivery.id}`);
  const answer =
    delivery.last_error ?? (delivery.last_status == null ? '—' : `HTTP ${delivery.last_status}`);
  return row([
    delivery.event_type,
    delivery.connection_id,
    delivery.status,
    String(delivery.attempts),
    answer,
    time(delivery.created_at),
    again,
  ]);
}

function deleteEndpoint(endpoint: EndpointView): void {
  const question = {
    title: `Delete the endpoint ${endpoint.url}?`,
    text: 'Its pending deliveries are dropped. This cannot be undone.',
    confirm: 'Delete endpoint',
  };
  afterConfirmation(question, 'webhooks-error', async () => {
    await api('DELETE', `${ADMIN_API}/v1/webhooks/${encodeURIComponent(endpoint.id)}`);
    await showWebhooks();
  });
}

element<HTMLFormElement>('webhook-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const form = event.target as HTMLFormElement;
  const fields = new FormData(form);
  const description = String(fields.get('description') ?? '').trim();
  const body = { url: String(fields.get('url') ?? '').trim(), ...(description && { description }) };
  api<EndpointView & { secret: string }>('POST', `${ADMIN_API}/v1/webhooks`, body)
    .then(async (created) => {
      report('webhooks-error');
      form.reset();
      element('new-secret-url').textContent = created.url;
      showOnce('new-secret', 'new-secret-value', created.secret);
      await showWebhooks();
    })
    .catch((problem: unknown) => report('webhooks-error', problem));
});

/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
// Providers: the list, a form that adds one from a preset (PUT) or edits one (PATCH: only the
// fields typed in change; the client secret stays unless a new one is typed), and delete. A
// provider configured by hand, URL by URL, is the API's or the CLI's job.
import { afterConfirmation, element, h, report, row } from './dom.ts';
import { ADMIN_API, api } from './http.ts';

interface ProviderView {
  name: string;
  token_url: string;
  client_id: string;
  has_client_secret: boolean;
  scopes: string[];
}

interface Preset {
  name: string;
  params: Record<string, string | null>;
  notes?: string;
}

/** The provider the form edits, or undefined when it adds one. */
let editing: string | undefined;
let presetsLoaded = false;

export async function showProviders(): Promise<void> {
  try {
    if (!presetsLoaded) await loadPresets();
    const { providers } = await api<{ providers: ProviderView[] }>(
      'GET',
      `${ADMIN_API}/v1/providers`,
    );
    report('providers-error');
    element('provider-rows').replaceChildren(
      ...(providers.length === 0 ? [row(['No provider yet.'])] : providers.map(providerRow)),
    );
  } catch (problem) {
    report('providers-error', problem);
  }
}

async function loadPresets(): Promise<void> {
  const { presets } = await api<{ presets: Preset[] }>('GET', `${ADMIN_API}/v1/presets`);
  element('provider-preset').replaceChildren(
    ...presets.map((preset) =>
      h('option', { value: preset.name, title: preset.notes ?? '' }, preset.name),
    ),
  );
  presetsLoaded = true;
}

function providerRow(provider: ProviderView): HTMLTableRowElement {
  const edit = h('button', { type: 'button', onclick: () => startEditing(provider) }, 'Edit');
  edit.setAttribute('aria-label', `Edit ${provider.name}`);
  const remove = h(
    'button',
    { type: 'button', className: 'danger', onclick: () => deleteProvider(provider.name) },
    'Delete',
  );
  remove.setAttribute('aria-label', `Delete ${provider.name}`);
  return row(
    [
      provider.name,
      provider.token_url,
      provider.client_id,
      provider.has_client_secret ? 'stored (sealed)' : 'none',
      provider.scopes.join(' ') || '—',
      h('span', { className: 'actions' }, edit, remove),
    ],
    { 'data-provider': provider.name },
  );
}

function startEditing(provider: ProviderView): void {
  editing = provider.name;
  const form = element<HTMLFormElement>('provider-form');
  form.reset();
  const name = element<HTMLInputElement>('provider-name');
  name.value = provider.name;
  name.readOnly = true;
  element<HTMLInputElement>('provider-client-id').value = provider.client_id;
  element<HTMLInputElement>('provider-scopes').value = provider.scopes.join(' ');
  for (const id of ['provider-preset', 'provider-params', 'provider-issuer']) {
    (element(id) as HTMLInputElement).disabled = true;
  }
  element('provider-form-title').textContent = `Edit ${provider.name}`;
  element('provider-submit').textContent = 'Save changes';
  element('provider-client-id').focus();
}

function stopEditing(): void {
  editing = undefined;
  element<HTMLInputElement>('provider-name').readOnly = false;
  for (const id of ['provider-preset', 'provider-params', 'provider-issuer']) {
    (element(id) as HTMLInputElement).disabled = false;
  }
  element('provider-form-title').textContent = 'Add a provider';
  element('provider-submit').textContent = 'Add provider';
}

function deleteProvider(name: string): void {
  const question = {
    title: `Delete provider ${name}?`,
    text: 'Its settings and sealed client secret are deleted. A provider that still has connections is not deleted.',
    confirm: 'Delete provider',
  };
  afterConfirmation(question, 'providers-error', async () => {
    await api('DELETE', `${ADMIN_API}/v1/providers/${encodeURIComponent(name)}`);
    await showProviders();
  });
}

/** "tenant=contoso, region=eu" as an object. */
function parseParams(text: string): Record<string, string> | undefined {
  const pairs = text
    .split(',')
    .map((pair) => pair.trim())
    .filter(Boolean);
  if (pairs.length === 0) return undefined;
  return Object.fromEntries(
    pairs.map((pair) => {
      const at = pair.indexOf('=');
      return at < 0 ? [pair, ''] : [pair.slice(0, at).trim(), pair.slice(at + 1).trim()];
    }),
  );
}

element<HTMLFormElement>('provider-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const form = new FormData(event.target as HTMLFormElement);
  const text = (name: string) => String(form.get(name) ?? '').trim();
  const name = text('name');
  const body: Record<string, unknown> = { client_id: text('client_id') };
  if (text('client_secret')) body.client_secret = text('client_secret');
  const scopes = text('scopes').split(/\s+/).filter(Boolean);
  if (scopes.length > 0 || editing) body.scopes = scopes;
  if (!editing) {
    if (text('preset')) body.preset = text('preset');
    const params = parseParams(text('preset_params'));
    if (params) body.preset_params = params;
    if (text('issuer')) body.issuer = text('issuer');
  }
  const method = editing ? 'PATCH' : 'PUT';
  const status = element('provider-form-status');
  api<ProviderView>(method, `${ADMIN_API}/v1/providers/${encodeURIComponent(name)}`, body)
    .then(async (saved) => {
      status.textContent = `${editing ? 'Saved' : 'Added'} provider ${saved.name}.`;
      (event.target as HTMLFormElement).reset();
      stopEditing();
      await showProviders();
    })
    .catch((problem: unknown) => {
      status.textContent = problem instanceof Error ? problem.message : String(problem);
    });
});

element('provider-cancel').addEventListener('click', stopEditing);

/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
// The console's entry module: sign-in and sign-out, and the pages by the URL's fragment
// (`#overview`, `#connections`, `#connection=<id>`, `#providers`, `#clients`, `#webhooks`).
// Every value from the API is written as text, never as HTML, and the page's CSP allows no
// inline script besides. The admin key is sent once, at sign-in, and kept nowhere: the session
// lives in an HttpOnly cookie, its CSRF token in http.ts.
import type { SessionReply } from './api.ts';
import { showClients } from './clients.ts';
import { showConnection } from './connection.ts';
import { showConnections } from './connections.ts';
import { element } from './dom.ts';
import { api, session } from './http.ts';
import { showOverview } from './overview.ts';
import { showProviders } from './providers.ts';
import { showWebhooks } from './webhooks.ts';

const PAGES: Record<string, (parameter: string) => void | Promise<void>> = {
  overview: showOverview,
  connections: (query) => showConnections(new URLSearchParams(query)),
  connection: (id) => showConnection(decodeURIComponent(id)),
  providers: showProviders,
  clients: showClients,
  webhooks: showWebhooks,
};

let expiryTimer: number | undefined;

function startSession(reply: SessionReply): void {
  session.start(reply.csrf_token);
  window.clearTimeout(expiryTimer);
  expiryTimer = window.setTimeout(
    () => showSignIn('Your session expired: sign in again.'),
    Math.max(0, Date.parse(reply.expires_at) - Date.now()),
  );
  element('sign-in').hidden = true;
  element('sign-out').hidden = false;
  element('nav').hidden = false;
  showRoute();
}

/** `#name`, `#name=<parameter>` or `#name?<query>`: that page; anything else the overview. */
function showRoute(): void {
  if (!session.signedIn) return;
  const [, name = 'overview', parameter = ''] =
    /^#([a-z]+)(?:[=?](.*))?$/.exec(location.hash) ?? [];
  const page = name in PAGES ? name : 'overview';
  for (const section of document.querySelectorAll<HTMLElement>('section.page')) {
    section.hidden = section.id !== page;
  }
  const current = page === 'connection' ? 'connections' : page;
  for (const link of element('nav').querySelectorAll('a')) {
    if (link.getAttribute('href') === `#${current}`) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  void PAGES[page]!(parameter);
}

window.addEventListener('hashchange', () => {
  element('notice').textContent = '';
  // A new API key or webhook secret is shown once: leaving its page forgets it.
  for (const box of document.querySelectorAll<HTMLElement>('.secret')) {
    box.hidden = true;
    for (const input of box.querySelectorAll('input')) input.value = '';
  }
  showRoute();
  // Keyboard and screen-reader users land on the new page, not on the link they left.
  element('main').focus();
});

function showSignIn(message = ''): void {
  session.end();
  window.clearTimeout(expiryTimer);
  for (const section of document.querySelectorAll<HTMLElement>('section.page'))
    section.hidden = true;
  element('sign-out').hidden = true;
  element('nav').hidden = true;
  element('sign-in').hidden = false;
  element('sign-in-error').textContent = message;
  element('admin-key').focus();
}
session.onEnded(showSignIn);

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

// Back from a re-authorization the console started: the connect flow's redirect carries
// `connection_id=` (done: that connection's page) or `error=` (said in the notice).
const back = new URLSearchParams(location.search);
if (back.has('connection_id') || back.has('error')) {
  const id = back.get('connection_id');
  element('notice').textContent = id
    ? 'Re-authorized: the owner signed in again.'
    : `The re-authorization failed: ${back.get('error')}.`;
  history.replaceState(null, '', id ? `/console#connection=${encodeURIComponent(id)}` : '/console');
}

// A reload keeps the session (the cookie) but not the CSRF token: the server says it again.
api<SessionReply>('GET', '/v1/console/session').then(startSession, () => showSignIn());

// The console in real headless Chromium against a real server on loopback (SQLite), with the
// test provider's authorization endpoint and a webhook receiver: one browser, one server and
// one signed-in page for the whole file, walked through in steps, as an operator would. Each
// step asserts what the page shows; the security checks run over everything the page received.
import { mkdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Page, Response } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser, type Browser } from './browser.ts';
import { startTestServer, type TestServer } from './helpers.ts';

/** On a machine without Chromium the set-up installs it first (apt-get: a few minutes). */
const INSTALL_TIMEOUT_MS = 10 * 60_000;
const HOSTILE_OWNER = '<script>window.__pwned=1</script>';
/** The test provider's tokens: `at_` or `rt_` and 32 base64url characters. */
const PROVIDER_TOKEN = /\b(?:at|rt)_[A-Za-z0-9_-]{32}\b/;
/** Where the screenshots go (gitignored); docs/console/ holds the copies committed once. */
const SCREENSHOTS = join(import.meta.dirname, '../../../.cache/test-output/console');

let browser: Browser;
let s: TestServer;
let base: string;
let receiver: Server;
let receiverUrl: string;
let page: Page;
/** Everything the page received, for the security checks at the end. */
const responses: Response[] = [];
/** Every token issued for the connections seeded below. */
const tokens: string[] = [];
let deadId: string;
let bobId: string;
let workerId: string;

beforeAll(async () => {
  receiver = createServer((_request, response) => response.writeHead(204).end());
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks`;
  [browser, s] = await Promise.all([
    launchBrowser(),
    startTestServer({
      server: {
        connect: { callbackUrl: () => `${base}/v1/connect/callback` },
        webhooks: { allowPrivate: true, pollIntervalMs: 50 },
      },
    }),
  ]);
  base = await s.app.listen({ port: 0, host: '127.0.0.1' });
  await s.putProvider();
  await s.admin('PATCH', '/v1/providers/test', { authorize_url: s.provider.authorizeUrl });
  for (const owner of ['alice', 'bob', HOSTILE_OWNER]) {
    const grant = await s.importGrant({ owner });
    tokens.push(grant.accessToken, grant.refreshToken);
    if (owner === 'bob') bobId = grant.id;
  }
  // One refresh that works (dave's token had expired) and one the provider refuses
  // (invalid_grant): carol's connection needs re-authorization.
  const dave = await s.importGrant({ owner: 'dave', expiresIn: 0 });
  const handedOut = await s.admin('POST', `/v1/connections/${dave.id}/token`, {});
  tokens.push(
    dave.accessToken,
    dave.refreshToken,
    handedOut.json<{ access_token: string }>().access_token,
  );
  const dead = await s.importGrant({ owner: 'carol', expiresIn: 0 });
  tokens.push(dead.accessToken, dead.refreshToken);
  deadId = dead.id;
  s.provider.injectFailures({ kind: 'invalid_grant' });
  const refused = await s.admin('POST', `/v1/connections/${deadId}/token`, {});
  expect(refused.json()).toMatchObject({ error: 'needs_reauth' });
  workerId = (await s.createClient([{ owner: 'carol', provider: 'test', actions: ['token.read'] }]))
    .id;

  await browser.context.clearCookies();
  page = await browser.context.newPage();
  await page.setViewportSize({ width: 1280, height: 900 });
  page.on('response', (response) => responses.push(response));
  mkdirSync(SCREENSHOTS, { recursive: true });
}, INSTALL_TIMEOUT_MS);

afterAll(async () => {
  await browser?.close();
  await s?.close();
  await new Promise((resolve) => receiver?.close(resolve));
});

const rows = (tbody: string) => page.locator(`#${tbody} tr`);
const nav = (name: string) => page.locator('#nav').getByRole('link', { name, exact: true });

describe('the admin console in Chromium, step by step', () => {
  it('signs in with the admin key into an HttpOnly, SameSite=Strict cookie; shows the overview', async () => {
    await page.goto(`${base}/console`);
    await page.getByLabel('Admin key').fill(s.adminKey);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Overview' }).waitFor();

    const [cookie, ...others] = await browser.context.cookies();
    expect(others).toEqual([]);
    expect(cookie).toMatchObject({
      name: 'tw_console_session',
      path: '/v1/console',
      httpOnly: true,
      sameSite: 'Strict',
      secure: false, // loopback over http; Secure everywhere else (console-session.test.ts)
    });
    expect(await page.evaluate(() => document.cookie)).toBe('');
    // The key was typed once: the page keeps it in no storage, nor in the field.
    const stored = await page.evaluate(() =>
      JSON.stringify({ ...localStorage, ...sessionStorage }),
    );
    expect(stored).not.toContain(s.adminKey);
    expect(await page.getByLabel('Admin key').inputValue()).toBe('');

    // 4 active and 1 needs_reauth connections of provider test.
    await expect.poll(() => rows('overview-counts').first().textContent()).toBe('test410');
    await expect.poll(() => rows('overview-refresh-totals').allTextContents()).toEqual(['test11']);
    expect(await page.locator('#refresh-chart svg[role="img"] polyline').count()).toBe(1);
    expect(await page.locator('#failure-chart svg[role="img"] polyline').count()).toBe(1);
    expect(await page.locator('#overview-breakers').textContent()).toBe('test: closed');
    expect(await page.locator('#overview-scheduler').textContent()).toBe('No refresh is overdue.');
    await page.screenshot({ path: join(SCREENSHOTS, 'overview.png'), fullPage: true });
  });

  it('finds the needs_reauth connection by filter and opens its page: facts, grants, timeline', async () => {
    await nav('Connections').click();
    await expect.poll(() => rows('connection-rows').count()).toBe(5);
    await page.getByLabel('Status').selectOption('needs_reauth');
    await page.getByRole('button', { name: 'Filter' }).click();
    await expect.poll(() => rows('connection-rows').count()).toBe(1);
    const cells = await page.locator(`tr[data-connection-id="${deadId}"] td`).allTextContents();
    const past = expect.stringMatching(/ ago$|^now$/);
    // Owner, provider, status, access expiry, refresh expiry, last refresh, consecutive failures
    // (none: invalid_grant is final, not retried), last error, reason.
    expect(cells).toEqual([
      'carol',
      'test',
      'needs_reauth',
      past,
      'not known',
      'never',
      '0',
      'invalid_grant',
      'invalid_grant',
    ]);
    // Search and "expires within" narrow on the server too.
    await page.getByLabel('Status').selectOption('');
    await page.getByLabel('Search').fill('DAV');
    await page.keyboard.press('Enter'); // the keyboard submits the filters
    await expect
      .poll(() => rows('connection-rows').allTextContents())
      .toEqual([expect.stringMatching(/^davetestactivein .+not known(now|.+ ago)0——$/)]);
    await page.getByLabel('Search').fill('');
    await page.getByLabel('Expires within').selectOption('3600');
    await page.getByRole('button', { name: 'Filter' }).click();
    await expect.poll(() => rows('connection-rows').textContent()).toBe('No connection matches.');
    await page.getByLabel('Expires within').selectOption('');
    await page.getByLabel('Status').selectOption('needs_reauth');
    await page.getByRole('button', { name: 'Filter' }).click();
    await expect.poll(() => rows('connection-rows').count()).toBe(1);

    await page.getByRole('link', { name: 'carol', exact: true }).click();
    await page.getByRole('heading', { name: 'Connection carol (test)' }).waitFor();
    await expect
      .poll(() => rows('connection-grants').allTextContents())
      .toEqual([`worker (${workerId})token.read`]);
    await expect.poll(() => page.locator('#timeline-entries li').count()).toBe(3);
    const entries = await page.locator('#timeline-entries li').allTextContents();
    expect(entries[0]).toMatch(/: token\.read by admin, needs_reauth$/);
    expect(entries[1]).toMatch(/: connection\.refresh by admin, needs_reauth$/);
    expect(entries[2]).toMatch(/: connection\.create by admin, ok$/);
    await page.screenshot({ path: join(SCREENSHOTS, 'connection.png'), fullPage: true });
  });

  it('starts a re-authorization: the link works, and the connection is active again', async () => {
    await page.getByRole('button', { name: 'Start a re-authorization' }).click();
    const link = page.getByLabel(/Send the owner this link/);
    await link.waitFor();
    const url = new URL(await link.inputValue());
    expect(url.origin + url.pathname).toBe(s.provider.authorizeUrl);
    expect(await page.getByRole('button', { name: 'Copy link' }).isVisible()).toBe(true);
    // The owner follows it: the provider and the callback bring the browser back to this
    // connection's page, re-authorized under the same id.
    await page.goto(url.href);
    await page.waitForURL(`${base}/console#connection=${deadId}`);
    await page.getByText('Re-authorized: the owner signed in again.').waitFor();
    await expect
      .poll(() => page.locator('#connection-facts dd').nth(1).textContent())
      .toBe('active');
    const entries = await page.locator('#timeline-entries li').allTextContents();
    expect(entries[0]).toMatch(/: connect\.callback by browser, ok$/);
  });

  it('revokes and deletes a connection only after its confirmation', async () => {
    await page.goto(`${base}/console#connection=${bobId}`);
    await page.getByRole('heading', { name: 'Connection bob (test)' }).waitFor();
    // From the keyboard: the dialog takes the focus, Escape cancels; so does its Cancel button.
    await page.getByRole('button', { name: 'Revoke and delete…' }).focus();
    await page.keyboard.press('Enter');
    await page.getByRole('dialog').waitFor();
    await page.keyboard.press('Escape');
    await expect.poll(() => page.getByRole('dialog').count()).toBe(0);
    await page.getByRole('button', { name: 'Revoke and delete…' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Cancel' }).click();
    expect((await s.admin('GET', `/v1/connections/${bobId}`)).statusCode).toBe(200);
    await page.getByRole('button', { name: 'Revoke and delete…' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Revoke and delete' }).click();
    await page.waitForURL(/#connections$/);
    expect((await s.admin('GET', `/v1/connections/${bobId}`)).statusCode).toBe(404);
  });

  it('creates a service client (its key shown once) and revokes it', async () => {
    await nav('Service clients').click();
    const form = page.locator('#client-form');
    await form.getByLabel('Name').fill('reporting');
    await form.getByLabel('connections.read', { exact: true }).check();
    await page.getByRole('button', { name: 'Create client' }).click();
    const key = page.getByLabel(/API key of reporting/);
    await key.waitFor();
    expect(await key.inputValue()).toMatch(/^tw_cli_[0-9a-f]{20}_[\w-]{43}$/);
    const apiKey = await key.inputValue();
    expect((await s.call({ method: 'GET', url: '/v1/connections', key: apiKey })).statusCode).toBe(
      200,
    );
    await expect.poll(() => rows('client-rows').count()).toBe(2);

    await page.getByRole('button', { name: 'Revoke reporting' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Revoke client' }).click();
    const revoked = page.locator('#client-rows tr', { hasText: 'reporting' }).locator('td').nth(4);
    // Shown once: away from the page and back, it is gone.
    await nav('Overview').click();
    await nav('Service clients').click();
    expect(await page.locator('#new-key').isHidden()).toBe(true);
    expect(await page.locator('#new-key-value').inputValue()).toBe('');
    await expect.poll(() => revoked.textContent()).toMatch(/ago$|^now$/);
    expect((await s.call({ method: 'GET', url: '/v1/connections', key: apiKey })).statusCode).toBe(
      401,
    );
    // A reload shows the list without the key: it was shown that once.
    await page.reload();
    await expect.poll(() => rows('client-rows').count()).toBe(2);
    expect(await page.locator('#new-key').isHidden()).toBe(true);
  });

  it('creates a provider from a preset, edits it and deletes it', async () => {
    await nav('Providers').click();
    const form = page.locator('#provider-form');
    await form.getByLabel('Name', { exact: true }).fill('gh');
    await form.getByLabel('Preset', { exact: true }).selectOption('github');
    await form.getByLabel('Client id').fill('Iv1.console');
    await form.getByLabel('Client secret').fill('console-secret');
    await page.getByRole('button', { name: 'Add provider' }).click();
    await page.getByText('Added provider gh.').waitFor();
    const gh = page.locator('tr[data-provider="gh"] td');
    await expect
      .poll(() => gh.allTextContents())
      .toEqual([
        'gh',
        'https://github.com/login/oauth/access_token',
        'Iv1.console',
        'stored (sealed)',
        '—',
        'EditDelete',
      ]);
    await page.getByRole('button', { name: 'Edit gh' }).click();
    await form.getByLabel('Scopes').fill('repo read:user');
    await page.getByRole('button', { name: 'Save changes' }).click();
    await page.getByText('Saved provider gh.').waitFor();
    await expect.poll(() => gh.nth(4).textContent()).toBe('repo read:user');
    expect(await gh.nth(3).textContent()).toBe('stored (sealed)'); // PATCH kept the secret

    await page.getByRole('button', { name: 'Delete gh' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Delete provider' }).click();
    await expect.poll(() => page.locator('tr[data-provider="gh"]').count()).toBe(0);
    // One with connections is refused, and the page says why.
    await page.getByRole('button', { name: 'Delete test' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Delete provider' }).click();
    await page.getByText(/provider test still has connections/).waitFor();
  });

  it('adds a webhook endpoint (its secret shown once) and redelivers a delivery', async () => {
    await nav('Webhooks').click();
    await page.locator('#webhook-form').getByLabel('URL').fill(receiverUrl);
    await page.getByRole('button', { name: 'Add endpoint' }).click();
    const secret = page.getByLabel(/Signing secret of/);
    await secret.waitFor();
    expect(await secret.inputValue()).toMatch(/^whsec_/);
    // Something to deliver: alice's connection is deleted (over the API).
    const alice = (await s.admin('GET', '/v1/connections?owner=alice')).json<{
      connections: { id: string }[];
    }>().connections[0]!;
    expect((await s.admin('DELETE', `/v1/connections/${alice.id}`)).statusCode).toBe(204);
    await page.getByRole('button', { name: `Deliveries to ${receiverUrl}` }).click();
    const delivery = page.locator('#delivery-rows tr', { hasText: 'connection.deleted' });
    await expect
      .poll(async () => {
        await page.getByRole('button', { name: `Deliveries to ${receiverUrl}` }).click();
        return delivery.locator('td').nth(2).textContent();
      })
      .toBe('delivered');
    await delivery.getByRole('button', { name: /^Redeliver/ }).click();
    await expect
      .poll(async () => {
        await page.getByRole('button', { name: `Deliveries to ${receiverUrl}` }).click();
        return delivery.locator('td').nth(3).textContent();
      })
      .toBe('2');
  });

  it('labels every field and button, and fits a phone screen', async () => {
    for (const section of ['overview', 'connections', 'providers', 'clients', 'webhooks']) {
      await page.goto(`${base}/console#${section}`);
      await page.locator(`#${section}`).waitFor();
      const unlabelled = await page.evaluate(() =>
        [...document.querySelectorAll<HTMLInputElement>('section:not([hidden]) :is(input, select)')]
          .filter((field) => field.type !== 'hidden' && (field.labels?.length ?? 0) === 0)
          .map((field) => field.id || field.name),
      );
      expect(unlabelled).toEqual([]);
    }
    await page.setViewportSize({ width: 390, height: 844 });
    for (const section of ['overview', 'connections', 'providers', 'clients', 'webhooks']) {
      await page.goto(`${base}/console#${section}`);
      await page.locator(`#${section}`).waitFor();
      // Wide tables scroll inside their own region; the page itself never scrolls sideways.
      const wide = await page.evaluate(() =>
        [...document.querySelectorAll('body *')]
          .filter((e) => e.getBoundingClientRect().right > 390 && !e.closest('.scroll'))
          .map((e) => e.tagName + '#' + e.id + '.' + e.className)
          .slice(0, 5),
      );
      expect(wide, section).toEqual([]);
      expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(
        390,
      );
    }
    await page.screenshot({ path: join(SCREENSHOTS, 'webhooks-phone.png'), fullPage: true });
    await page.setViewportSize({ width: 1280, height: 900 });
  });

  it('sent the CSRF token on every call; a write without it is refused, from the browser itself', async () => {
    // Every call the page itself made carried the session's CSRF token, but the two that get
    // it: the sign-in, and the session read after a reload. The server took each write.
    const calls = responses.filter(
      (r) =>
        r.url().includes('/v1/console/') &&
        !(r.request().method() !== 'DELETE' && r.url().endsWith('/v1/console/session')),
    );
    const writes = calls.filter((r) => r.request().method() !== 'GET');
    expect(calls.length).toBeGreaterThan(30);
    expect(writes.length).toBeGreaterThanOrEqual(8);
    for (const call of calls) {
      expect(call.request().headers()['x-csrf-token'], call.url()).toMatch(/^[\w-]{43}$/);
    }
    expect(writes.filter((r) => r.status() === 403)).toEqual([]);
    // The same requests without it, from this signed-in page: refused.
    const statuses = await page.evaluate(async () => {
      const signOut = await fetch('/v1/console/session', { method: 'DELETE' });
      const client = await fetch('/v1/console/api/v1/clients', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'sneaky', grants: [] }),
      });
      return [signOut.status, client.status];
    });
    expect(statuses).toEqual([403, 403]);
  });

  it('shows an owner named <script>… as text, and its CSP blocks an injected inline script', async () => {
    await page.goto(`${base}/console#connections`);
    await page.getByRole('link', { name: HOSTILE_OWNER }).waitFor();
    expect(await page.evaluate(() => (window as { __pwned?: number }).__pwned)).toBeUndefined();
    const outcome = await page.evaluate(
      () =>
        new Promise<{ ran: boolean; violated: string }>((resolve) => {
          document.addEventListener('securitypolicyviolation', (event) => {
            const ran = (window as { __pwned?: number }).__pwned === 2;
            resolve({ ran, violated: event.violatedDirective });
          });
          const script = document.createElement('script');
          script.textContent = 'window.__pwned = 2';
          document.body.append(script);
        }),
    );
    expect(outcome).toEqual({ ran: false, violated: 'script-src-elem' });
  });

  it('received no access or refresh token in any response, and signs out', async () => {
    const bodies = await Promise.all(
      responses.map(
        async (r) =>
          `${r.url()}\n${JSON.stringify(await r.allHeaders())}\n${await r.text().catch(() => '')}`,
      ),
    );
    expect(bodies.filter((body) => body.includes('/v1/console/')).length).toBeGreaterThan(30);
    for (const body of bodies) {
      expect(body).not.toMatch(PROVIDER_TOKEN);
      for (const token of tokens) expect(body).not.toContain(token);
    }

    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByText('Signed out.').waitFor();
    expect(await browser.context.cookies()).toEqual([]);
    await page.reload();
    await page.getByLabel('Admin key').waitFor();
    expect(await page.locator('#connections').isHidden()).toBe(true);
  });
});

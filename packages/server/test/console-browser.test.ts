// The console in real headless Chromium against a real server on loopback (SQLite): sign in,
// filter, the cookie, CSRF, no token in any response, markup in the data stays text. One
// browser for the file; each test a fresh page.
import type { Page, Response } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser, type Browser } from './browser.ts';
import { startTestServer, type TestServer } from './helpers.ts';

/** On a machine without Chromium the set-up installs it first (apt-get: a few minutes). */
const INSTALL_TIMEOUT_MS = 10 * 60_000;
const HOSTILE_OWNER = '<script>window.__pwned=1</script>';

let browser: Browser;
let s: TestServer;
let base: string;
/** Every token the provider issued for the connections seeded below. */
const tokens: string[] = [];
let deadId: string;
let aliceId: string;

beforeAll(async () => {
  [browser, s] = await Promise.all([launchBrowser(), startTestServer()]);
  base = await s.app.listen({ port: 0, host: '127.0.0.1' });
  await s.putProvider();
  for (const owner of ['alice', 'bob', HOSTILE_OWNER]) {
    const grant = await s.importGrant({ owner });
    tokens.push(grant.accessToken, grant.refreshToken);
    if (owner === 'alice') aliceId = grant.id;
  }
  // Three hand-outs in a row: one entry of alice's timeline.
  for (let i = 0; i < 3; i++) {
    expect((await s.admin('POST', `/v1/connections/${aliceId}/token`, {})).statusCode).toBe(200);
  }
  // A refresh the provider refuses (invalid_grant): the connection needs re-authorization.
  const dead = await s.importGrant({ owner: 'carol', expiresIn: 0 });
  tokens.push(dead.accessToken, dead.refreshToken);
  deadId = dead.id;
  s.provider.injectFailures({ kind: 'invalid_grant' });
  const refused = await s.admin('POST', `/v1/connections/${deadId}/token`, {});
  expect(refused.json()).toMatchObject({ error: 'needs_reauth' });
}, INSTALL_TIMEOUT_MS);

afterAll(async () => {
  await browser?.close();
  await s?.close();
});

/** A fresh page, signed in through the form; every response it receives is kept. */
async function signedInPage(): Promise<{ page: Page; responses: Response[] }> {
  await browser.context.clearCookies();
  const page = await browser.context.newPage();
  const responses: Response[] = [];
  page.on('response', (response) => responses.push(response));
  await page.goto(`${base}/console`);
  await page.getByLabel('Admin key').fill(s.adminKey);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#connection-rows tr').first().waitFor();
  return { page, responses };
}

describe('the admin console in Chromium', () => {
  it('signs in, filters to the needs_reauth connection and shows its row; signs out', async () => {
    const { page, responses } = await signedInPage();
    await expect.poll(() => page.locator('#connection-rows tr').count()).toBe(4);

    await page.getByLabel('Status').selectOption('needs_reauth');
    await page.getByRole('button', { name: 'Filter' }).click();
    await expect.poll(() => page.locator('#connection-rows tr').count()).toBe(1);
    const row = page.locator(`tr[data-connection-id="${deadId}"]`);
    const cells = await row.locator('td').allTextContents();
    const past = expect.stringMatching(/ ago$|^now$/);
    // Owner, provider, status, access expiry, refresh expiry (none known), last change,
    // consecutive failures (none: invalid_grant is final, not retried), last error, reason.
    expect(cells).toEqual([
      'carol',
      'test',
      'needs_reauth',
      past,
      '—',
      past,
      '0',
      'invalid_grant',
      'invalid_grant',
    ]);

    // The key was typed once: the page keeps it in no storage.
    const stored = await page.evaluate(() =>
      JSON.stringify({ ...localStorage, ...sessionStorage }),
    );
    expect(stored).not.toContain(s.adminKey);
    expect(await page.getByLabel('Admin key').inputValue()).toBe('');

    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByText('Signed out.').waitFor();
    // The sign-out is a write: it carried the session's CSRF token, and the server took it.
    const signOut = responses.find((r) => r.request().method() === 'DELETE')!;
    expect(signOut.status()).toBe(204);
    expect(signOut.request().headers()['x-csrf-token']).toMatch(/^[\w-]{43}$/);
    expect(await browser.context.cookies()).toEqual([]);
    await page.reload();
    await page.getByLabel('Admin key').waitFor();
    expect(await page.locator('#connections').isHidden()).toBe(true);
    await page.close();
  });

  it("opens a connection's timeline from its owner, hand-outs folded into one entry", async () => {
    const { page } = await signedInPage();
    await page.getByRole('link', { name: 'alice', exact: true }).click();
    await page.getByText(`Timeline: ${aliceId}`).waitFor();
    await expect.poll(() => page.locator('#timeline-entries li').count()).toBe(2);
    const entries = await page.locator('#timeline-entries li').allTextContents();
    expect(entries[0]).toMatch(/: token\.read by admin, ok \(3 times since .+\)$/);
    expect(entries[1]).toMatch(/: connection\.create by admin, ok$/);
    expect(await page.locator('#connections').isHidden()).toBe(true);

    await page.getByRole('link', { name: 'Back to connections' }).click();
    await page.locator('#connections').waitFor();
    await page.close();
  });

  it('keeps the session in an HttpOnly, SameSite=Strict cookie the page cannot read', async () => {
    const { page } = await signedInPage();
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
    await page.close();
  });

  it('refuses a write without the CSRF token, from the signed-in browser itself', async () => {
    const { page, responses } = await signedInPage();
    const status = await page.evaluate(async () => {
      const response = await fetch('/v1/console/session', { method: 'DELETE' });
      return response.status;
    });
    expect(status).toBe(403);
    // Still signed in: the refused request changed nothing.
    await page.getByRole('button', { name: 'Filter' }).click();
    await expect
      .poll(
        () =>
          responses.filter((r) => r.status() === 200 && r.url().includes('/connections')).length,
      )
      .toBe(2);
    await page.close();
  });

  it('receives no access or refresh token in any response', async () => {
    const { page, responses } = await signedInPage();
    await page.getByLabel('Status').selectOption('active');
    await page.getByRole('button', { name: 'Filter' }).click();
    await expect.poll(() => page.locator('#connection-rows tr').count()).toBe(3);
    const bodies = await Promise.all(
      responses.map(
        async (r) =>
          `${r.url()}\n${JSON.stringify(await r.allHeaders())}\n${await r.text().catch(() => '')}`,
      ),
    );
    expect(
      bodies.filter((body) => body.includes('/v1/console/connections')).length,
    ).toBeGreaterThanOrEqual(2);
    for (const token of tokens) {
      for (const body of bodies) expect(body).not.toContain(token);
    }
    await page.close();
  });

  it('shows an owner named <script>… as text, and its CSP blocks an injected inline script', async () => {
    const { page } = await signedInPage();
    const owners = await page.locator('#connection-rows tr td:first-child').allTextContents();
    expect(owners).toContain(HOSTILE_OWNER);
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
    await page.close();
  });
});

// Server time of the console's connections page with 100,000 connections (SQLite file).
//
//   node --conditions=tokenwarden-source --import tsx bench/console-list.ts [--count 100000] [--iterations 30]
//
// Seeds one connection through the API, copies its row `count - 1` times in one transaction (every
// 100th needs_reauth) and writes one `connection.refresh` audit event per connection over the last
// three hours, signs in to the console, then times in process (app.inject: the server's work
// without the network) `GET /v1/console/connections` for the first screen (50 rows), a page deep
// in the keyset, the filters and the search, and the overview and a connection's page. Prints
// p50 and p95 in ms.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { KeyRing, openSqliteStore } from '@tokenwarden/core';
import Database from 'better-sqlite3';
import { buildServer, generateApiKey, hashApiKey } from '@tokenwarden/server';

const { values } = parseArgs({
  options: {
    count: { type: 'string', default: '100000' },
    iterations: { type: 'string', default: '30' },
  },
});
const count = Number(values.count);
const iterations = Number(values.iterations);

const dir = mkdtempSync(join(tmpdir(), 'tw-bench-console-'));
const path = join(dir, 'tokenwarden.sqlite');
const store = openSqliteStore({ path });
await store.migrate();
const adminKey = generateApiKey();
const app = await buildServer({
  store,
  keyRing: KeyRing.generate('k1'),
  adminKeyHash: hashApiKey(adminKey),
  logger: false,
  scheduler: false,
});
try {
  const admin = { authorization: `Bearer ${adminKey}` };
  await app.inject({
    method: 'PUT',
    url: '/v1/providers/acme',
    headers: admin,
    payload: {
      token_url: 'https://acme.example/token',
      client_id: 'bench',
      client_secret: 'bench',
    },
  });
  const created = await app.inject({
    method: 'POST',
    url: '/v1/connections',
    headers: admin,
    payload: { provider: 'acme', owner: 'user-0', access_token: 'seed', expires_in: 3600 },
  });
  if (created.statusCode !== 201) throw new Error(`seed: ${created.body}`);

  const seedStarted = performance.now();
  const db = new Database(path);
  const template = db.prepare('SELECT * FROM credentials').get() as Record<string, unknown>;
  const columns = Object.keys(template);
  const insert = db.prepare(
    `INSERT INTO credentials (${columns.join(', ')}) VALUES (${columns.map((c) => `@${c}`).join(', ')})`,
  );
  const audit = db.prepare(
    `INSERT INTO audit_events (at, request_id, actor, action, connection_id, owner, provider, outcome, detail)
     VALUES (?, 'scheduler', 'system', 'connection.refresh', ?, NULL, 'acme', ?, NULL)`,
  );
  const now = Date.now();
  db.transaction(() => {
    for (let i = 1; i < count; i++) {
      const id = `conn_bench${String(i).padStart(10, '0')}`;
      audit.run(
        now - Math.floor((i / count) * 3 * 3_600_000),
        id,
        i % 50 === 0 ? 'refresh_unavailable' : 'ok',
      );
      const dead = i % 100 === 0;
      insert.run({
        ...template,
        id,
        owner: `user-${i}`,
        status: dead ? 'needs_reauth' : 'active',
        status_reason: dead ? 'invalid_grant' : null,
      });
    }
  })();
  db.close();
  const seedS = (performance.now() - seedStarted) / 1000;

  const signIn = await app.inject({
    method: 'POST',
    url: '/v1/console/session',
    payload: { admin_key: adminKey },
  });
  const cookie = String(signIn.headers['set-cookie']).split(';')[0]!;
  const middle = `conn_bench${String(Math.floor(count / 2)).padStart(10, '0')}`;
  const cases: [string, string][] = [
    ['first screen (50 rows)', 'limit=50'],
    ['a page in the middle', `limit=50&cursor=${middle}`],
    ['status=needs_reauth', 'limit=50&status=needs_reauth'],
    ['owner=user-77777', 'limit=50&owner=user-77777'],
    ['search=user-7777', 'limit=50&search=user-7777'],
    ['ends_within=86400', 'limit=50&ends_within=86400'],
  ];
  const pages: [string, string][] = [
    ['the overview', '/v1/console/overview'],
    ["a connection's page", `/v1/console/connections/${middle}`],
    ["a connection's timeline", `/v1/console/connections/${middle}/timeline`],
  ];
  console.log(`${count} connections (seeded in ${seedS.toFixed(1)} s), ${iterations} runs each`);
  const runs: [string, string][] = [
    ...cases.map(([name, query]): [string, string] => [name, `/v1/console/connections?${query}`]),
    ...pages,
  ];
  for (const [name, url] of runs) {
    const times: number[] = [];
    for (let i = 0; i < iterations + 3; i++) {
      const started = performance.now();
      const response = await app.inject({ url, headers: { cookie } });
      if (response.statusCode !== 200) throw new Error(`${name}: ${response.body}`);
      if (i >= 3) times.push(performance.now() - started); // 3 warm-up runs
    }
    times.sort((a, b) => a - b);
    const at = (q: number) => times[Math.min(times.length - 1, Math.floor(q * times.length))]!;
    console.log(`${name}: p50 ${at(0.5).toFixed(2)} ms, p95 ${at(0.95).toFixed(2)} ms`);
  }
} finally {
  await app.close();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
}

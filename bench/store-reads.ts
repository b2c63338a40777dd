// Per-call cost of the store reads on a token hand-out, on the embedded SQLite store.
//
//   node --conditions=tokenwarden-source --import tsx bench/store-reads.ts [--iterations 20000]
//
// Measures, one after the other in one process: store.getCredential, store.service.getClient,
// and broker.getAccessToken of a valid (unexpired) token, which is what
// `POST /v1/connections/{id}/token` costs in core. Each is run `iterations` times sequentially
// after a warm-up; the figure is the mean wall time per call (µs). Shared machines are noisy:
// compare runs made back to back.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { CredentialBroker, openEmbedded } from '@tokenwarden/core';

const { values } = parseArgs({ options: { iterations: { type: 'string', default: '20000' } } });
const iterations = Number(values.iterations);

const dir = mkdtempSync(join(tmpdir(), 'tw-bench-reads-'));
const { store, keyRing } = await openEmbedded({ directory: dir, env: {}, warn: () => {} });
try {
  const broker = new CredentialBroker({
    store,
    keyRing,
    providers: [
      {
        name: 'acme',
        tokenUrl: 'https://acme.example/token',
        clientId: 'bench',
        clientSecret: 'bench',
      },
    ],
  });
  const { id } = await broker.importCredential({
    provider: 'acme',
    owner: 'bench-user',
    accessToken: 'at_benchmark_0123456789abcdef',
    refreshToken: 'rt_benchmark_0123456789abcdef',
    expiresIn: 3600,
  });
  const clientId = 'cli_0123456789abcdef0123';
  await store.service.insertClient({
    id: clientId,
    name: 'bench',
    keyHash: '0'.repeat(64),
    grants: [{ owner: '*', provider: '*', actions: ['token.read'] }],
  });

  const cases: Array<[string, () => Promise<unknown>]> = [
    ['store.getCredential', () => store.getCredential(id)],
    ['store.service.getClient', () => store.service.getClient(clientId)],
    ['broker.getAccessToken', () => broker.getAccessToken(id)],
  ];
  console.log(`store-reads: ${iterations} sequential calls each, node ${process.version}`);
  for (const [name, call] of cases) {
    for (let i = 0; i < Math.min(5000, iterations); i++) await call();
    const started = process.hrtime.bigint();
    for (let i = 0; i < iterations; i++) await call();
    const us = Number(process.hrtime.bigint() - started) / 1000 / iterations;
    console.log(`${name.padEnd(26)} ${us.toFixed(1).padStart(7)} µs/call`);
  }
} finally {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
}

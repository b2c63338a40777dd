// The AWS KMS key source through the real @aws-sdk/client-kms against moto on loopback: only
// wrapped data keys in the database, one KMS call per data key per process (never per hand-out),
// a replica that loses the KMS keeps serving while a new one is not ready, and `keys rewrap`
// killed halfway then run again.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { FAKE_AWS_ENV, startMoto, TestProvider, type Moto } from '@tokenwarden/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run, serve, SLOW, start, stop, type Server } from './cli-process.ts';
import { ADMIN_KEY, call, importTestConnection } from './serve-process.ts';

let moto: Moto;
let provider: TestProvider;
let dir: string;

beforeAll(async () => {
  moto = await startMoto();
  provider = await TestProvider.start();
  dir = mkdtempSync(join(tmpdir(), 'tw-kms-'));
}, 600_000);

afterAll(async () => {
  await moto?.close();
  await provider?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/**
 * Set-up calls straight to moto's KMS JSON API (moto checks no signature); the server under test
 * uses the real @aws-sdk/client-kms (packages/core/test/key-sources.test.ts uses it in process).
 */
interface KmsAnswer {
  KeyMetadata: { KeyId: string };
}

async function kmsCall(operation: string, body: object): Promise<KmsAnswer> {
  const response = await fetch(moto.url, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-amz-json-1.1',
      'x-amz-target': `TrentService.${operation}`,
      authorization:
        'AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/kms/aws4_request, SignedHeaders=host, Signature=0',
    },
    body: JSON.stringify(body),
  });
  expect(response.status).toBe(200);
  return (await response.json()) as KmsAnswer;
}

async function kmsKey(): Promise<string> {
  return (await kmsCall('CreateKey', {})).KeyMetadata.KeyId;
}

function env(kmsKeyId: string, db: string): Record<string, string> {
  return {
    ...FAKE_AWS_ENV,
    AWS_ENDPOINT_URL_KMS: moto.countedUrl,
    TOKENWARDEN_KMS_KEY_ID: kmsKeyId,
    TOKENWARDEN_KMS_CONTEXT: 'deployment=test',
    TOKENWARDEN_ADMIN_KEY: ADMIN_KEY,
    TOKENWARDEN_DB: db,
  };
}

async function importConnection(server: Server): Promise<{ id: string; accessToken: string }> {
  const put = await call(server, 'PUT', '/v1/providers/test', {
    token_url: provider.tokenUrl,
    client_id: provider.clientId,
    client_secret: provider.clientSecret,
  });
  expect(put.status).toBeLessThan(300);
  return importTestConnection(server, provider);
}

function rows(db: string, query: string): Record<string, unknown>[] {
  const sqlite = new Database(db, { readonly: true });
  try {
    return sqlite.prepare(query).all() as Record<string, unknown>[];
  } finally {
    sqlite.close();
  }
}

describe('TOKENWARDEN_KMS_KEY_ID: data keys wrapped by AWS KMS (moto)', () => {
  it(
    'stores only wrapped data keys; the KMS is called once per data key per process, never per hand-out',
    SLOW,
    async () => {
      const db = join(dir, 'serving.sqlite');
      const keyId = await kmsKey();
      const before = moto.counts();
      const server = await serve(dir, env(keyId, db));
      try {
        const { id, accessToken } = await importConnection(server);
        for (let i = 0; i < 20; i += 1) {
          const token = await call(server, 'POST', `/v1/connections/${id}/token`, {});
          expect(token.status).toBe(200);
          expect(token.body.access_token).toBe(accessToken);
        }
        const after = moto.counts();
        // One GenerateDataKey for the first data key, no Decrypt: it was never unwrapped again.
        expect((after.GenerateDataKey ?? 0) - (before.GenerateDataKey ?? 0)).toBe(1);
        expect((after.Decrypt ?? 0) - (before.Decrypt ?? 0)).toBe(0);

        const keys = rows(db, 'select * from data_keys');
        expect(keys).toHaveLength(1);
        expect(keys[0]!.kms_key_id).toBe(keyId);
        // The wrapped blob is not the data key: it is longer (the KMS ciphertext) and opens nothing here.
        expect(Buffer.from(String(keys[0]!.wrapped_key), 'base64').length).toBeGreaterThan(32);
        expect(JSON.stringify(rows(db, 'select * from settings'))).not.toContain(accessToken);
        const metrics = await (await fetch(`${server.url}/metrics`)).text();
        expect(metrics).toContain('tokenwarden_');
        for (const secret of [accessToken, String(keys[0]!.wrapped_key)]) {
          expect(metrics).not.toContain(secret);
          expect(server.stderr() + server.stdout()).not.toContain(secret);
        }

        // A second replica unwraps the data key once: one Decrypt, then hand-outs without the KMS.
        const second = await serve(dir, env(keyId, db));
        try {
          const token = await call(second, 'POST', `/v1/connections/${id}/token`, {});
          expect(token.body.access_token).toBe(accessToken);
          expect((moto.counts().Decrypt ?? 0) - (after.Decrypt ?? 0)).toBe(1);
          for (const line of [server.stderr(), second.stderr()]) {
            expect(line).toContain(`keys from KMS key ${keyId}`);
            expect(line).not.toContain(accessToken);
          }
        } finally {
          await stop(second);
        }
      } finally {
        await stop(server);
      }
    },
  );

  it(
    'keys rewrap to a second KMS key, killed halfway and run again: no row rewritten, the old key unneeded',
    SLOW,
    async () => {
      const db = join(dir, 'rewrap.sqlite');
      const first = await kmsKey();
      const second = await kmsKey();
      const server = await serve(dir, env(first, db));
      let id: string;
      let accessToken: string;
      try {
        ({ id, accessToken } = await importConnection(server));
      } finally {
        await stop(server);
      }
      // Three data keys: rotate twice (no server running, nothing to wait for).
      for (let i = 0; i < 2; i += 1) {
        const rotated = await run(['keys', 'rotate'], { cwd: dir, env: env(first, db) });
        expect(rotated.stderr + rotated.stdout).toMatch(/re-encrypted 1 credentials/);
      }
      const credentialsBefore = rows(db, 'select id, access_token, refresh_token from credentials');
      expect(rows(db, 'select * from data_keys')).toHaveLength(3);

      // Killed halfway: the KMS fails the second Encrypt, the rewrap stops after one data key.
      moto.failAfter('Encrypt', 1);
      const halfway = await run(['keys', 'rewrap', '--kms-key', second], {
        cwd: dir,
        env: env(first, db),
      });
      moto.failAfter('Encrypt', Infinity);
      expect(halfway.code).not.toBe(0);
      expect(halfway.stderr).toMatch(/AWS KMS could not be reached for Encrypt/);
      const kmsKeys = () =>
        rows(db, 'select kms_key_id from data_keys').map((row) => row.kms_key_id);
      expect(kmsKeys().filter((key) => key === second)).toHaveLength(1);
      const again = await run(['keys', 'rewrap', '--kms-key', second, '--json'], {
        cwd: dir,
        env: env(first, db),
      });
      expect(again.code, again.stderr).toBe(0);
      expect(JSON.parse(again.stdout)).toEqual({ kms_key_id: second, rewrapped: 2, already: 1 });
      expect(kmsKeys()).toEqual([second, second, second]);
      expect(rows(db, 'select id, access_token, refresh_token from credentials')).toEqual(
        credentialsBefore,
      );

      moto.disable(first);
      const after = await serve(dir, env(second, db));
      try {
        const token = await call(after, 'POST', `/v1/connections/${id}/token`, {});
        expect(token.status).toBe(200);
        expect(token.body.access_token).toBe(accessToken);
      } finally {
        await stop(after);
      }
    },
  );

  it('refuses bad KMS settings with one clear line, before any KMS call', SLOW, async () => {
    const db = join(dir, 'bad.sqlite');
    const before = moto.counts();
    const context = await run(['serve', '--port', '0'], {
      cwd: dir,
      env: { ...env('some-key', db), TOKENWARDEN_KMS_CONTEXT: 'no-equals-sign' },
    });
    expect(context.code).not.toBe(0);
    expect(context.stderr).toMatch(/TOKENWARDEN_KMS_CONTEXT must be name=value pairs/);
    const noTarget = await run(['keys', 'rewrap'], { cwd: dir, env: env('some-key', db) });
    expect(noTarget.stderr).toMatch(/keys rewrap needs --kms-key/);
    const noKms = await run(['keys', 'rewrap', '--kms-key', 'x'], { cwd: dir });
    expect(noKms.stderr).toMatch(/keys rewrap needs TOKENWARDEN_KMS_KEY_ID/);
    expect(moto.counts()).toEqual(before);
  });

  it(
    'a replica whose KMS fails at start is not ready, then serves once the KMS answers',
    SLOW,
    async () => {
      const db = join(dir, 'late.sqlite');
      const keyId = await kmsKey();
      const first = await serve(dir, env(keyId, db));
      const { id, accessToken } = await importConnection(first);
      await stop(first);

      moto.failAfter('Decrypt', 0);
      const late = await start(['serve', '--port', '0'], {
        cwd: dir,
        env: env(keyId, db),
        ready: (out) => /not ready on port \d+/.test(out.stderr()),
      });
      try {
        const port = /not ready on port (\d+)/.exec(late.stderr())![1];
        const notReady = await fetch(`http://127.0.0.1:${port}/readyz`);
        expect(notReady.status).toBe(503);
        expect(((await notReady.json()) as { error: { message: string } }).error.message).toMatch(
          /AWS KMS could not be reached for Decrypt \(KMSInternalException\)/,
        );
        moto.failAfter('Decrypt', Infinity);
        for (let tries = 0; !/listening on/.test(late.stderr()); tries += 1) {
          if (tries > 300) throw new Error(`never became ready:\n${late.stderr()}`);
          await new Promise((done) => setTimeout(done, 50));
        }
        const url = `http://127.0.0.1:${port}`;
        expect((await fetch(`${url}/readyz`)).status).toBe(200);
        const token = await call({ ...late, url }, 'POST', `/v1/connections/${id}/token`, {});
        expect(token.body.access_token).toBe(accessToken);
      } finally {
        moto.failAfter('Decrypt', Infinity);
        await stop(late);
      }
    },
  );

  // Last: it stops moto.
  it(
    'a running replica that loses the KMS keeps serving; a new one is not ready and says why',
    SLOW,
    async () => {
      const db = join(dir, 'outage.sqlite');
      const keyId = await kmsKey();
      const server = await serve(dir, env(keyId, db));
      try {
        const { id, accessToken } = await importConnection(server);
        await moto.stop();
        const token = await call(server, 'POST', `/v1/connections/${id}/token`, {});
        expect(token.status).toBe(200);
        expect(token.body.access_token).toBe(accessToken);
        expect((await fetch(`${server.url}/readyz`)).status).toBe(200);

        const late = await start(['serve', '--port', '0'], {
          cwd: dir,
          env: env(keyId, db),
          ready: (out) => /not ready on port \d+/.test(out.stderr()),
        });
        try {
          const port = /not ready on port (\d+)/.exec(late.stderr())![1];
          const ready = await fetch(`http://127.0.0.1:${port}/readyz`);
          expect(ready.status).toBe(503);
          const body = (await ready.json()) as { error: { message: string } };
          expect(body.error.message).toMatch(/AWS KMS could not be reached for Decrypt/);
        } finally {
          await stop(late);
        }
      } finally {
        await stop(server);
      }
    },
  );
});

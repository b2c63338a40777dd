// The shared SDK scenarios (sdks/scenarios/scenarios.json) run with @tokenwarden/client against the
// harness's real server, as the Python and Go SDKs run them: one behaviour, three languages.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
// undici's Agent: what the SDK's `dispatcher` option takes for a private CA and a client certificate.
import { Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TokenwardenClient, TokenwardenError, type AccessToken } from '../src/index.ts';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const HARNESS = 'sdks/scenarios/harness.ts';

interface StepExpect {
  ok?: boolean;
  error?: string;
  reason?: string;
  retry_after_at_least?: number;
  same_token_as_previous?: boolean;
  version_increased?: boolean;
  expires_in_at_least?: number;
  status?: number;
  tls_error?: boolean;
}

type TlsChoice = 'none' | 'ca' | 'ca_and_certificate' | 'ca_and_other_certificate';

interface Step {
  op: 'get_token' | 'fetch' | 'reject_current';
  min_ttl?: number;
  concurrency?: number;
  server?: 'closed';
  tls?: TlsChoice;
  expect?: StepExpect;
}

interface Case {
  name: string;
  steps: Step[];
  expect: { redemptions: number; hand_outs: number };
}

interface Prepared {
  base_url: string;
  api_key: string;
  connection_id: string;
  closed_url: string;
  resource_url: string;
  tls?: Record<'ca_file' | 'cert_file' | 'key_file' | 'other_cert_file' | 'other_key_file', string>;
}

/** The dispatcher a step's TLS choice names (sdks/scenarios/README.md); undefined: fetch's own. */
function dispatcher(setup: Prepared, choice: TlsChoice | undefined): Agent | undefined {
  if (!setup.tls || !choice || choice === 'none') return undefined;
  const files = setup.tls;
  const pair =
    choice === 'ca_and_certificate'
      ? [files.cert_file, files.key_file]
      : choice === 'ca_and_other_certificate'
        ? [files.other_cert_file, files.other_key_file]
        : undefined;
  return new Agent({
    connect: {
      ca: readFileSync(files.ca_file),
      ...(pair && { cert: readFileSync(pair[0]!), key: readFileSync(pair[1]!) }),
    },
  });
}

/**
 * The TypeScript client has no TLS error class of its own: its NetworkError's cause carries Node's
 * code, a certificate's (UNABLE_TO_VERIFY_LEAF_SIGNATURE, ...) or the handshake's (ERR_SSL_...).
 * A TLS 1.3 server refuses a missing client certificate after the client's handshake is done,
 * and undici reports only the socket it then closes (UND_ERR_SOCKET): counted as the TLS failure
 * it is here, where every server such a step reaches speaks HTTPS.
 */
function isTlsFailure(error: unknown): boolean {
  const code = (error as { cause?: { cause?: { code?: unknown } } }).cause?.cause?.code;
  return (
    typeof code === 'string' &&
    /^(ERR_SSL_|ERR_TLS_)|CERT|SIGNATURE|ISSUER|^UND_ERR_SOCKET$/.test(code)
  );
}

const { cases } = JSON.parse(
  readFileSync(new URL('../../../sdks/scenarios/scenarios.json', import.meta.url), 'utf8'),
) as { cases: Case[] };

let harness: ChildProcess;
let control: string;

beforeAll(async () => {
  harness = spawn(
    process.execPath,
    ['--conditions=tokenwarden-source', '--import', 'tsx', HARNESS],
    {
      cwd: ROOT,
      stdio: ['pipe', 'pipe', 'inherit'],
    },
  );
  const [line] = await Promise.race([
    createInterface({ input: harness.stdout! })
      [Symbol.asyncIterator]()
      .next()
      .then((next) => [next.value as string]),
    new Promise<never>((_, reject) =>
      harness.on('exit', (code) => reject(new Error(`harness exited ${code}`))),
    ),
  ]);
  control = (JSON.parse(line!) as { control: string }).control;
});

afterAll(async () => {
  const exited = new Promise((resolve) => harness.on('exit', resolve));
  harness.stdin!.end();
  await exited;
});

async function controlCall(method: string, path: string): Promise<unknown> {
  const response = await fetch(control + path, { method });
  if (!response.ok)
    throw new Error(`${method} ${path}: ${response.status} ${await response.text()}`);
  return response.status === 204 ? undefined : response.json();
}

describe('the shared SDK scenarios', () => {
  it.each(cases)('$name', async (scenario) => {
    const setup = (await controlCall('POST', `/scenarios/${scenario.name}`)) as Prepared;
    const client = (server?: 'closed', tls?: TlsChoice) =>
      new TokenwardenClient({
        baseUrl: server === 'closed' ? setup.closed_url : setup.base_url,
        apiKey: setup.api_key,
        retry: { maxAttempts: 2 },
        dispatcher: dispatcher(setup, tls),
      });
    const sdk = client();
    let previous: AccessToken | undefined;

    for (const step of scenario.steps) {
      const expected = step.expect ?? {};
      if (step.op === 'reject_current') {
        await controlCall(
          'POST',
          `/scenarios/${scenario.name}/reject?connection_id=${setup.connection_id}`,
        );
      } else if (step.op === 'fetch') {
        const response = await sdk.fetch(setup.connection_id, setup.resource_url);
        await response.arrayBuffer();
        if (expected.status !== undefined) expect(response.status).toBe(expected.status);
      } else {
        const caller = step.server || step.tls ? client(step.server, step.tls) : sdk;
        const outcomes = await Promise.all(
          Array.from({ length: step.concurrency ?? 1 }, () =>
            caller
              .getAccessToken(
                setup.connection_id,
                step.min_ttl ? { minTtl: step.min_ttl } : undefined,
              )
              .then(
                (token) => ({ token }),
                (error: unknown) => ({ error }),
              ),
          ),
        );
        for (const outcome of outcomes) {
          if (expected.ok === false) {
            expect(outcome).toHaveProperty('error');
            const error = (outcome as { error: unknown }).error;
            expect(error).toBeInstanceOf(TokenwardenError);
            const typed = error as TokenwardenError & { reason?: string; retryAfterMs?: number };
            if (expected.error) expect(typed.code).toBe(expected.error);
            if (expected.reason) expect(typed.reason).toBe(expected.reason);
            if (expected.tls_error !== undefined)
              expect(isTlsFailure(typed)).toBe(expected.tls_error);
            if (expected.retry_after_at_least !== undefined) {
              expect(typed.retryAfterMs).toBeGreaterThanOrEqual(
                expected.retry_after_at_least * 1000,
              );
            }
            continue;
          }
          expect(outcome).toHaveProperty('token');
          const token = (outcome as { token: AccessToken }).token;
          if (expected.expires_in_at_least !== undefined) {
            expect(token.expiresAt - Date.now()).toBeGreaterThanOrEqual(
              expected.expires_in_at_least * 1000,
            );
          }
          if (expected.same_token_as_previous)
            expect(token.accessToken).toBe(previous?.accessToken);
          if (expected.version_increased) expect(token.version).toBeGreaterThan(previous!.version);
        }
        const last = outcomes.at(-1);
        if (last && 'token' in last) previous = last.token;
      }
    }

    const stats = await controlCall(
      'GET',
      `/scenarios/${scenario.name}/stats?connection_id=${setup.connection_id}`,
    );
    expect(stats).toEqual(scenario.expect);
  });
});

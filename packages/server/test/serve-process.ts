// `tokenwarden serve` as a child process, through the real binary (the workspace bin link that
// `npm ci` creates), and HTTP calls to it.
import { spawn, type ChildProcess } from 'node:child_process';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { TestProvider } from '@tokenwarden/testkit';

const BIN = fileURLToPath(new URL('../../../node_modules/.bin/tokenwarden', import.meta.url));

/** The admin key the tests give their servers. */
export const ADMIN_KEY = 'an-operator-chosen-admin-key';

export interface Replica {
  child: ChildProcess;
  url: string;
  stderr: () => string;
  exited: Promise<number | null>;
}

/** The environment without the caller's TOKENWARDEN_* settings, so only the test's apply. */
export function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!name.startsWith('TOKENWARDEN_')) env[name] = value;
  }
  return { ...env, ...extra };
}

/** `tokenwarden serve --port 0 ...args`, resolved once it prints the URL it listens on. */
export function serve(
  env: Record<string, string>,
  args: string[] = [],
  options: { uid?: number; gid?: number; cwd?: string } = {},
): Promise<Replica> {
  const child = spawn(BIN, ['serve', '--port', '0', ...args], {
    cwd: options.cwd ?? tmpdir(),
    env: cleanEnv({ TOKENWARDEN_LOG_LEVEL: 'error', ...env }),
    stdio: ['ignore', 'pipe', 'pipe'],
    uid: options.uid,
    gid: options.gid,
  });
  let stderr = '';
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  child.stdout!.resume();
  return new Promise((resolve, reject) => {
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      const url = /listening on (http:\/\/\S+)/.exec(stderr)?.[1];
      if (url) resolve({ child, url, stderr: () => stderr, exited });
    });
    void exited.then((code) => reject(new Error(`serve exited with ${code}:\n${stderr}`)));
  });
}

export interface Answer {
  status: number;
  retryAfter: string | null;
  body: Record<string, unknown>;
}

export async function call(
  replica: Pick<Replica, 'url'>,
  method: string,
  path: string,
  body?: unknown,
): Promise<Answer> {
  const response = await fetch(`${replica.url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${ADMIN_KEY}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return {
    status: response.status,
    retryAfter: response.headers.get('retry-after'),
    body: text ? (JSON.parse(text) as Record<string, unknown>) : {},
  };
}

/** A fresh grant of the test provider, imported as a connection of provider `test`. */
export async function importTestConnection(
  replica: Pick<Replica, 'url'>,
  provider: Pick<TestProvider, 'issueGrant'>,
): Promise<{ id: string; accessToken: string }> {
  const grant = provider.issueGrant();
  const created = await call(replica, 'POST', '/v1/connections', {
    provider: 'test',
    owner: `owner-${Math.random().toString(36).slice(2)}`,
    access_token: grant.access_token,
    refresh_token: grant.refresh_token,
    expires_in: 3600,
  });
  if (created.status !== 201) throw new Error(`import: ${created.status} ${created.body.error}`);
  return { id: created.body.id as string, accessToken: grant.access_token };
}

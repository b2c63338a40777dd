// moto (PyPI's `moto[server]`, the AWS API emulator) on loopback for the KMS tests: installed into
// a project-local venv (.cache/venv-moto, pinned, reused when present), started on a free port,
// behind a counting forwarder so a test can assert how many KMS calls a process made.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, request, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const MOTO_VERSION = '5.2.1';
const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
const VENV = join(ROOT, '.cache', 'venv-moto');
/** How long an install may take, and so how long another waits for it. */
const INSTALL_WAIT_MS = 600_000;

/** Fake credentials: moto accepts any, and they keep the SDK off the real credential chain. */
export const FAKE_AWS_ENV = {
  AWS_ACCESS_KEY_ID: 'testing',
  AWS_SECRET_ACCESS_KEY: 'testing',
  AWS_REGION: 'us-east-1',
} as const;

export interface Moto {
  /** moto itself. */
  url: string;
  /** The counting forwarder in front of it: give this to the processes under test. */
  countedUrl: string;
  /** KMS requests through the forwarder, by operation (`Decrypt`, `GenerateDataKey`, ...). */
  counts(): Record<string, number>;
  /** From now on, the forwarder answers 503 to `operation` after letting `allowed` more through. */
  failAfter(operation: string, allowed: number): void;
  /**
   * From now on, the forwarder refuses every request that names `keyId` as AWS KMS refuses one for
   * a disabled key (400 `DisabledException`): moto records DisableKey but still serves the key.
   */
  disable(keyId: string): void;
  /** Stops moto (the forwarder then answers 502: the KMS is down). */
  stop(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Installs moto once, however many test files ask at the same time: one takes the lock and
 * installs, the others wait for its marker. (Two pip installs into one venv at once left a file
 * spawning `moto_server` while the other was reinstalling it.)
 */
async function ensureInstalled(): Promise<string> {
  const bin = join(VENV, 'bin', 'moto_server');
  const installed = join(VENV, `installed-${MOTO_VERSION}`);
  const lock = `${VENV}.lock`;
  mkdirSync(dirname(lock), { recursive: true });
  for (const deadline = Date.now() + INSTALL_WAIT_MS; ;) {
    if (existsSync(installed)) return bin;
    try {
      mkdirSync(lock);
    } catch (error) {
      if ((error as { code?: string }).code !== 'EEXIST') throw error;
      // Another process is installing; a lock older than any install is a killed run's.
      if (Date.now() - lockTakenAt(lock) > INSTALL_WAIT_MS)
        rmSync(lock, { recursive: true, force: true });
      if (Date.now() > deadline) throw new Error('moto: another install did not finish in time');
      await new Promise((done) => setTimeout(done, 500));
      continue;
    }
    try {
      if (!existsSync(installed)) {
        execFileSync('python3', ['-m', 'venv', VENV], { stdio: 'pipe' });
        execFileSync(join(VENV, 'bin', 'pip'), ['install', '-q', `moto[server]==${MOTO_VERSION}`], {
          stdio: 'pipe',
          timeout: INSTALL_WAIT_MS,
        });
        writeFileSync(installed, '');
      }
      return bin;
    } finally {
      rmSync(lock, { recursive: true, force: true });
    }
  }
}

/** When the lock was taken (now, if it is already gone). */
function lockTakenAt(lock: string): number {
  try {
    return statSync(lock).mtimeMs;
  } catch {
    return Date.now();
  }
}

async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((done) => probe.listen(0, '127.0.0.1', done));
  const { port } = probe.address() as AddressInfo;
  await new Promise((done) => probe.close(done));
  return port;
}

export async function startMoto(): Promise<Moto> {
  const bin = await ensureInstalled();
  const port = await freePort();
  const child: ChildProcess = spawn(bin, ['-H', '127.0.0.1', '-p', String(port)], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let output = '';
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const url = `http://127.0.0.1:${port}`;
  for (let tries = 0; ; tries += 1) {
    try {
      await fetch(`${url}/moto-api/`);
      break;
    } catch {
      if (tries > 200 || child.exitCode !== null) throw new Error(`moto did not start:\n${output}`);
      await new Promise((done) => setTimeout(done, 100));
    }
  }

  const counts: Record<string, number> = {};
  const failing = new Map<string, number>();
  const disabled = new Set<string>();
  const refuse = (outgoing: ServerResponse, status: number, type: string, message: string) => {
    outgoing.writeHead(status, { 'content-type': 'application/x-amz-json-1.1' });
    outgoing.end(JSON.stringify({ __type: type, message }));
  };
  const forwarder: Server = createServer((incoming, outgoing) => {
    const target = String(incoming.headers['x-amz-target'] ?? '');
    const operation = target.replace(/^TrentService\./, '') || 'other';
    counts[operation] = (counts[operation] ?? 0) + 1;
    // KMS requests are small JSON documents: read whole, to see which key each one names.
    const chunks: Buffer[] = [];
    incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
    incoming.on('end', () => {
      const body = Buffer.concat(chunks);
      const budget = failing.get(operation);
      if (budget !== undefined) {
        if (budget <= 0) return refuse(outgoing, 503, 'KMSInternalException', 'failing on purpose');
        failing.set(operation, budget - 1);
      }
      const keyId = keyIdOf(body);
      if (keyId !== undefined && disabled.has(keyId)) {
        return refuse(outgoing, 400, 'DisabledException', `${keyId} is disabled.`);
      }
      const upstream = request(
        `${url}${incoming.url}`,
        { method: incoming.method, headers: incoming.headers },
        (answer) => {
          outgoing.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(outgoing);
        },
      );
      upstream.on('error', () => {
        outgoing.writeHead(502);
        outgoing.end();
      });
      upstream.end(body);
    });
  });
  await new Promise<void>((done) => forwarder.listen(0, '127.0.0.1', done));
  const countedUrl = `http://127.0.0.1:${(forwarder.address() as AddressInfo).port}`;

  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((done) => child.once('exit', done));
    child.kill('SIGTERM');
    await exited;
  };
  return {
    url,
    countedUrl,
    counts: () => ({ ...counts }),
    failAfter: (operation, allowed) => failing.set(operation, allowed),
    disable: (keyId) => disabled.add(keyId),
    stop,
    async close() {
      await stop();
      forwarder.closeAllConnections();
      await new Promise((done) => forwarder.close(done));
    },
  };
}

/** The `KeyId` a KMS request names, if any (the id or an ARN ending in it: both count). */
function keyIdOf(body: Buffer): string | undefined {
  try {
    const keyId = (JSON.parse(body.toString('utf8')) as { KeyId?: unknown }).KeyId;
    return typeof keyId === 'string' ? keyId.replace(/^arn:.*:key\//, '') : undefined;
  } catch {
    return undefined;
  }
}

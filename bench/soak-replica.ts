// bench:soak's replicas: `tokenwarden serve` child processes, restarted in place, and what they
// use of memory (RSS from /proc, the V8 heap from their own /metrics).
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../node_modules/.bin/tokenwarden', import.meta.url));

export interface Replica {
  url: string;
  restart(): Promise<void>;
  stop(): Promise<void>;
  memory(): Promise<{ rss: number | undefined; heapUsed: number | undefined }>;
}

/**
 * A `tokenwarden serve` process (the built binary) on `databaseUrl`; a restart keeps its port.
 * `env` must hold TOKENWARDEN_ADMIN_KEY (read back for /metrics).
 */
export async function startReplica(
  env: Record<string, string>,
  databaseUrl: string,
  port: number,
): Promise<Replica> {
  let child: ChildProcess;
  let exited: Promise<void>;
  const launch = async (onPort: number): Promise<string> => {
    child = spawn(BIN, ['serve', '--port', String(onPort), '--db', databaseUrl], {
      env: { ...withoutTokenwardenSettings(), ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    exited = new Promise((resolve) => child.once('exit', () => resolve()));
    let stderr = '';
    return new Promise<string>((resolve, reject) => {
      child.stderr!.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
        const url = /listening on (http:\/\/\S+)/.exec(stderr)?.[1];
        if (url) resolve(url);
      });
      void exited.then(() => reject(new Error(`serve exited:\n${stderr}`)));
    });
  };
  const url = await launch(port);
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    await exited;
  };
  return {
    url,
    stop,
    async restart() {
      await stop();
      // Same port: the load generator keeps its address and retries elsewhere meanwhile.
      await launch(Number(new URL(url).port));
    },
    async memory() {
      return {
        rss: rssBytes(child.pid),
        heapUsed: await heapUsedBytes(url, env.TOKENWARDEN_ADMIN_KEY!),
      };
    },
  };
}

function withoutTokenwardenSettings(): NodeJS.ProcessEnv {
  return Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !name.startsWith('TOKENWARDEN_')),
  );
}

/** Resident set size from /proc (Linux). */
function rssBytes(pid: number | undefined): number | undefined {
  try {
    const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kb === undefined ? undefined : Number(kb) * 1024;
  } catch {
    return undefined;
  }
}

/** The V8 heap in use, from the replica's own /metrics (prom-client's default metrics). */
async function heapUsedBytes(url: string, adminKey: string): Promise<number | undefined> {
  try {
    const response = await fetch(`${url}/metrics`, {
      headers: { authorization: `Bearer ${adminKey}` },
      signal: AbortSignal.timeout(5_000),
    });
    const text = await response.text();
    const value = /^tokenwarden_nodejs_heap_size_used_bytes (\S+)$/m.exec(text)?.[1];
    return value === undefined ? undefined : Number(value);
  } catch {
    return undefined;
  }
}

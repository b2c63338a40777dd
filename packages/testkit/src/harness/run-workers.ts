// Runs N copies of a worker script as separate processes (separate event loops, separate
// connections to the store) and collects what each one reported.
import type { ChildProcess } from 'node:child_process';
import { onLines, spawnTs, TailBuffer } from './spawn.ts';

export interface WorkerSpec {
  /** Absolute path of a .ts or .js module. */
  script: string;
  args?: string[];
  env?: Record<string, string>;
}

export interface RunWorkersOptions extends WorkerSpec {
  count: number;
  /** Default 60 s; a child still running then is SIGKILLed. */
  timeoutMs?: number;
  /** Hold every child in waitForStart() until all are ready, then release them together. */
  barrier?: boolean;
  /** Extra arguments for one child, appended to `args`. */
  perWorkerArgs?: (index: number) => string[];
}

export interface WorkerResult<T> {
  index: number;
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  /** The value the child passed to reportResult(), if it did. */
  result?: T;
  /** The last 4 KiB of the child's stderr. */
  stderr: string;
}

const RESULT_PREFIX = 'TW_RESULT ';

export function runWorkers<T>(options: RunWorkersOptions): Promise<WorkerResult<T>[]> {
  const { script, args = [], env = {}, count, timeoutMs = 60_000, barrier = false } = options;
  const argsFor = (index: number) => [...args, ...(options.perWorkerArgs?.(index) ?? [])];
  if (!Number.isInteger(count) || count < 1) throw new RangeError('count must be >= 1');

  // The barrier opens once every child is either ready or gone: a child that dies while booting
  // must not leave its siblings waiting until the timeout.
  const ready: ChildProcess[] = [];
  let settled = 0;
  const settle = (): void => {
    if (++settled < count) return;
    for (const child of ready) child.stdin?.end('GO\n');
  };

  const runOne = (index: number): Promise<WorkerResult<T>> =>
    new Promise((resolve) => {
      const child = spawnTs(script, argsFor(index), {
        ...env,
        TW_WORKER_INDEX: String(index),
        TW_WORKER_COUNT: String(count),
      });
      const stderr = new TailBuffer(4096);
      let result: T | undefined;
      let isReady = false;
      let done = false;

      // Writing GO to a child that already died raises EPIPE here; its exit is reported anyway.
      child.stdin?.on('error', () => {});
      // Without a barrier nobody will send GO: EOF makes a stray waitForStart() fail fast.
      if (!barrier) child.stdin?.end();

      onLines(child.stdout!, (line) => {
        if (line === 'TW_READY' && barrier && !isReady) {
          isReady = true;
          ready.push(child);
          settle();
        } else if (line.startsWith(RESULT_PREFIX)) {
          try {
            result = JSON.parse(line.slice(RESULT_PREFIX.length)) as T;
          } catch {
            // The line itself is not echoed: worker results may carry tokens.
            stderr.push('\n[runWorkers] unparsable TW_RESULT line\n');
          }
        }
      });
      child.stderr!.on('data', (chunk: Buffer) => stderr.push(chunk));

      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      const finish = (exitCode: number | null, signal: NodeJS.Signals | null): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (barrier && !isReady) settle();
        resolve({ index, exitCode, signal, result, stderr: stderr.toString() });
      };
      // 'close' (not 'exit') so that everything the child wrote to stdout has been read.
      child.on('close', finish);
      child.on('error', (error) => {
        stderr.push(`\n[runWorkers] ${error.message}\n`);
        if (child.pid === undefined) finish(null, null); // never started, so no 'close' either
      });
    });

  return Promise.all(Array.from({ length: count }, (_, index) => runOne(index)));
}

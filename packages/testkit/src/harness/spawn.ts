// Starts a module in a fresh Node process the way the project runs it. TypeScript sources (the
// repository's tests and benches): workspace packages resolve to src/ through the
// tokenwarden-source condition, tsx compiles. Built JavaScript (an installed testkit): plain node.
import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

/** node [--conditions=tokenwarden-source --import tsx] <script> ...args, stdio piped. */
export function spawnTs(
  script: string,
  args: readonly string[] = [],
  env: Record<string, string> = {},
): ChildProcess {
  const loader = script.endsWith('.ts')
    ? ['--conditions=tokenwarden-source', '--import', tsx()]
    : [];
  return spawn(process.execPath, [...loader, script, ...args], {
    stdio: 'pipe',
    env: { ...process.env, ...env },
  });
}

// Resolved from this file rather than passed as the bare name 'tsx', which Node would resolve
// against the child's working directory and fail to find outside the repository. Only when a
// .ts script asks: tsx is an optional peer, absent where the testkit is installed built.
function tsx(): string {
  return pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
}

/** Keeps only the last `limit` bytes of a stream, enough to debug a failure without flooding. */
export class TailBuffer {
  readonly limit: number;
  #chunks: Buffer[] = [];
  #size = 0;

  constructor(limit = 4096) {
    this.limit = limit;
  }

  push(chunk: Buffer | string): void {
    const buffer = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    this.#chunks.push(buffer);
    this.#size += buffer.length;
    if (this.#size > this.limit * 2) this.#compact();
  }

  toString(): string {
    this.#compact();
    return Buffer.concat(this.#chunks).toString('utf8');
  }

  #compact(): void {
    const all = Buffer.concat(this.#chunks);
    const kept = all.subarray(Math.max(0, all.length - this.limit));
    this.#chunks = [kept];
    this.#size = kept.length;
  }
}

/** Calls `onLine` for every complete line written to a readable stream. */
export function onLines(stream: NodeJS.ReadableStream, onLine: (line: string) => void): void {
  let pending = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    pending += chunk;
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) onLine(line.replace(/\r$/, ''));
  });
}

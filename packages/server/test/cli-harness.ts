// The real `tokenwarden` binary (the workspace bin link that `npm ci` creates) as the CLI tests
// run it: commands in child processes with only the test's TOKENWARDEN_* settings, and
// `tokenwarden serve` on a free port.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';

export const BIN = fileURLToPath(
  new URL('../../../node_modules/.bin/tokenwarden', import.meta.url),
);

/** The environment without the caller's TOKENWARDEN_* settings, so only the test's apply. */
export function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!name.startsWith('TOKENWARDEN_')) env[name] = value;
  }
  return { ...env, ...extra };
}

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function run(
  args: string[],
  options: { cwd: string; env?: Record<string, string>; input?: string },
): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(BIN, args, { cwd: options.cwd, env: cleanEnv(options.env ?? {}) });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(options.input ?? '');
  });
}

export interface Server {
  child: ChildProcess;
  url: string;
  stderr: () => string;
  exited: Promise<number | null>;
}

/** `tokenwarden serve --port 0`, resolved once it prints the URL it listens on. */
export function serve(cwd: string, env: Record<string, string> = {}): Promise<Server> {
  const child = spawn(BIN, ['serve', '--port', '0'], {
    cwd,
    env: cleanEnv({ TOKENWARDEN_LOG_LEVEL: 'warn', ...env }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  child.stdout!.resume();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`serve did not start:\n${stderr}`));
    }, 60_000);
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      const url = /listening on (http:\/\/\S+)/.exec(stderr)?.[1];
      if (url) {
        clearTimeout(timer);
        resolve({ child, url, stderr: () => stderr, exited });
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`serve exited with ${code} before listening:\n${stderr}`));
    });
  });
}

export async function stop(server: Server): Promise<number | null> {
  server.child.kill('SIGTERM');
  return server.exited;
}

// Each step spawns a Node process (the compiled CLI): slow on a busy shared machine.
export const SLOW = { timeout: 240_000 };

export const ADMIN_KEY = /Generated the admin key[^:]*: (tw_admin_[A-Za-z0-9_-]+)/;

/** An expected failure: a non-zero exit and exactly one `error: ...` line on stderr. */
export function expectOneErrorLine(result: Run, code: number, pattern: RegExp): void {
  expect(result.code).toBe(code);
  const lines = result.stderr.trimEnd().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^error: /);
  expect(lines[0]).toMatch(pattern);
}

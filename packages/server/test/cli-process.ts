// The `tokenwarden` binary as a user runs it (the workspace bin link that `npm ci` creates, plain
// node on the compiled dist/), for the tests that drive the CLI through real child processes.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
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

/** Runs `command` (the binary unless given) to its end, with `input` on stdin. */
export function run(
  args: string[],
  options: { cwd: string; env?: Record<string, string>; input?: string; command?: string },
): Promise<Run> {
  return runToEnd(options.command ?? BIN, args, {
    cwd: options.cwd,
    env: cleanEnv(options.env ?? {}),
    input: options.input,
  });
}

/** Any command run to its end in exactly `env`, with `input` on stdin; its output collected. */
export function runToEnd(
  command: string,
  args: readonly string[],
  options: { cwd: string; env: NodeJS.ProcessEnv; input?: string | undefined },
): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: options.cwd, env: options.env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(options.input ?? '');
  });
}

/** A long-running command (serve, dev-provider), resolved once its output says it is ready. */
export interface Running {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
}

export function start(
  args: string[],
  options: { cwd: string; env?: Record<string, string>; ready: (out: Running) => boolean },
): Promise<Running> {
  const child = spawn(BIN, args, {
    cwd: options.cwd,
    env: cleanEnv({ TOKENWARDEN_LOG_LEVEL: 'warn', ...options.env }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const running: Running = { child, stdout: () => stdout, stderr: () => stderr, exited };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${args[0]} did not start:\n${stderr}`));
    }, 60_000);
    const check = () => {
      if (!options.ready(running)) return;
      clearTimeout(timer);
      resolve(running);
    };
    child.stdout!.on('data', (chunk: Buffer) => ((stdout += chunk.toString()), check()));
    child.stderr!.on('data', (chunk: Buffer) => ((stderr += chunk.toString()), check()));
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${args[0]} exited with ${code} before it was ready:\n${stderr}`));
    });
  });
}

export interface Server extends Running {
  url: string;
}

/** `tokenwarden serve --port 0`, resolved once it prints the URL it listens on. */
export async function serve(
  cwd: string,
  env: Record<string, string> = {},
  extraArgs: string[] = [],
): Promise<Server> {
  const listening = (out: Running) => /listening on (https?:\/\/\S+)/.exec(out.stderr())?.[1];
  const running = await start(['serve', '--port', '0', ...extraArgs], {
    cwd,
    env,
    ready: (out) => listening(out) !== undefined,
  });
  return { ...running, url: listening(running)! };
}

/** SIGTERM (or `signal`), then the exit code. */
export async function stop(
  process: Running,
  signal: NodeJS.Signals = 'SIGTERM',
): Promise<number | null> {
  process.child.kill(signal);
  return process.exited;
}

// Each step spawns a Node process (the compiled CLI): slow on a busy shared machine.
export const SLOW = { timeout: 240_000 };

/** The line a first start prints when it generates the admin key (never the key itself). */
export const GENERATED_ADMIN_KEY = /Generated the admin key and wrote it to (\S+) \(mode 0600/;

/** The admin key a first start generated, read from the file its output names. */
export function generatedAdminKey(output: string): string {
  const path = GENERATED_ADMIN_KEY.exec(output)?.[1];
  if (!path) throw new Error(`no admin key was generated:\n${output}`);
  const key = readFileSync(path, 'utf8').trim();
  expect(key).toMatch(/^tw_admin_[A-Za-z0-9_-]{43}$/);
  expect(output).not.toContain(key);
  return key;
}

/** An expected failure: a non-zero exit and exactly one `error: ...` line on stderr. */
export function expectOneErrorLine(result: Run, code: number, pattern: RegExp): void {
  expect(result.code).toBe(code);
  const lines = result.stderr.trimEnd().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^error: /);
  expect(lines[0]).toMatch(pattern);
}

const BIN_DIR = fileURLToPath(new URL('../../../node_modules/.bin', import.meta.url));

/**
 * A shell script as a user would paste it at the repository root: `npx tokenwarden` is the
 * workspace's binary (npx itself would look the name up in the registry outside the repository).
 */
export function shell(
  script: string,
  options: { cwd: string; env?: Record<string, string> },
): Promise<Run> {
  return run(['-c', `set -e\nnpx() { "$@"; }\n${script}`], {
    cwd: options.cwd,
    command: 'bash',
    env: { PATH: `${BIN_DIR}:${process.env.PATH ?? ''}`, ...options.env },
  });
}

/** The commands in a command's output: indented lines, continued by a trailing backslash. */
export function printedCommands(output: string): string[] {
  return output
    .replace(/ \\\n\s+/g, ' ')
    .split('\n')
    .filter((line) => line.startsWith('  '))
    .map((line) => line.trim());
}

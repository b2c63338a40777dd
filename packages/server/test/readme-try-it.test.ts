// The README's "Try it in two minutes" section, run as written: its three shell blocks, in a
// temporary directory, against the compiled CLI. What is replaced is only what cannot be known
// before the run: the ports (both servers listen on a free one: other test runs share the
// machine), the admin key the server printed, and `npm ci && npm start`, which is the build this
// run already did followed by `tokenwarden serve`.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import {
  generatedAdminKey,
  printedCommands,
  serve,
  shell,
  SLOW,
  start,
  stop,
  type Running,
} from './cli-process.ts';

const README = fileURLToPath(new URL('../../../README.md', import.meta.url));
const CLIENT = fileURLToPath(new URL('../../client', import.meta.url));

/** The fenced sh blocks of one README section, in order. */
function shellBlocks(heading: string): string[] {
  const text = readFileSync(README, 'utf8');
  const begin = text.indexOf(`\n${heading}\n`);
  expect(begin, `README section ${heading}`).toBeGreaterThan(0);
  const end = text.indexOf('\n## ', begin + 1);
  const section = text.slice(begin, end < 0 ? undefined : end);
  return [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((match) => match[1]!);
}

/** Continuation lines joined, as the shell reads them. */
function joined(script: string): string {
  return script.replace(/ \\\n\s+/g, ' ');
}

describe('the README walkthrough', () => {
  const running: Running[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'tw-readme-'));
  afterAll(async () => {
    for (const child of running) if (child.child.exitCode === null) await stop(child);
    rmSync(dir, { recursive: true, force: true });
  });

  it('goes from npm start to a token in a worker', SLOW, async () => {
    const [server, devProvider, steps, ...rest] = shellBlocks('## Try it in two minutes');
    expect(rest).toEqual([]);
    expect(server).toBe('npm ci && npm start\n');
    expect(devProvider).toBe('npx tokenwarden dev-provider\n');

    const api = await serve(dir);
    running.push(api);
    // The README reads it from the file the first start wrote, as a user would.
    generatedAdminKey(api.stderr());
    const dev = await start(['dev-provider', '--port', '0'], {
      cwd: dir,
      ready: (out) => out.stderr().includes('Ctrl-C stops it'),
    });
    running.push(dev);
    const providerUrl = /Test OAuth provider on (http:\/\/\S+) /.exec(dev.stdout())![1]!;

    const script = steps!.replaceAll('http://127.0.0.1:8081', providerUrl);
    // The README's providers put line is the one dev-provider prints.
    const [put] = printedCommands(dev.stdout());
    expect(joined(script)).toContain(put);

    // worker.mjs imports @tokenwarden/client as it would at the repository root.
    mkdirSync(join(dir, 'node_modules', '@tokenwarden'), { recursive: true });
    symlinkSync(CLIENT, join(dir, 'node_modules', '@tokenwarden', 'client'));
    const result = await shell(script, { cwd: dir, env: { TOKENWARDEN_URL: api.url } });
    expect(result.stderr).not.toMatch(/error/i);
    expect(result.code).toBe(0);
    // The last two lines: `tokenwarden token`'s and the worker's (providers put prints its table).
    const [token, fromWorker] = result.stdout.trimEnd().split('\n').slice(-2);
    // Refreshed once at the provider, and the worker got that same token.
    expect(token === readFileSync(join(dir, 'at.txt'), 'utf8').trim()).toBe(false);
    const accepted = await fetch(`${providerUrl}/resource`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(accepted.status).toBe(200);
    expect(fromWorker).toBe(`version 2: ${token!.slice(0, 6)}...`);
  });
});

// Runs the Python SDK's pytest suite (sdks/python/tests) as a child process: the scenario file,
// 4 processes × 50 threads, and the Temporal helpers against the run's Temporal server. The
// project-local venv (.cache/venv-python-sdk) is made on first use and remade only when
// pyproject.toml or constraints.txt change (a hash stamp), so a clean clone needs python3 alone.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { expect, inject, it } from 'vitest';

// The Temporal global setup's names for inject().
import type {} from '../../packages/testkit/src/temporal/provided.ts';

const sdk = import.meta.dirname;
const root = resolve(sdk, '../..');
const venv = join(root, '.cache', 'venv-python-sdk');
const python = join(venv, 'bin', 'python');
const stampFile = join(venv, 'tokenwarden-install.sha256');

function run(command: string, args: string[], env: NodeJS.ProcessEnv = process.env) {
  return new Promise<{ code: number | null; output: string }>((done, fail) => {
    const child = spawn(command, args, { cwd: sdk, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('error', fail);
    child.on('close', (code) => done({ code, output }));
  });
}

async function ensureVenv(): Promise<void> {
  const stamp = createHash('sha256')
    .update(readFileSync(join(sdk, 'pyproject.toml')))
    .update(readFileSync(join(sdk, 'constraints.txt')))
    .digest('hex');
  if (existsSync(python) && existsSync(stampFile) && readFileSync(stampFile, 'utf8') === stamp) {
    return;
  }
  const steps: [string, string[]][] = [
    ['python3', ['-m', 'venv', '--clear', venv]],
    [
      python,
      [
        ...['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check'],
        ...['-c', 'constraints.txt', '-e', '.[temporal,otel,test]'],
      ],
    ],
  ];
  for (const [command, args] of steps) {
    const { code, output } = await run(command, args);
    if (code !== 0) throw new Error(`${command} ${args.join(' ')} failed:\n${output}`);
  }
  writeFileSync(stampFile, stamp);
}

it('passes the Python SDK tests (pytest)', { timeout: 900_000 }, async () => {
  await ensureVenv();
  const temporalAddress = inject('temporalAddress') || process.env.TEMPORAL_ADDRESS || '';
  const { code, output } = await run(python, ['-m', 'pytest', '-q', '-rfEs'], {
    ...process.env,
    TEMPORAL_ADDRESS: temporalAddress,
    // Under the suite a missing Temporal server fails the Temporal tests instead of skipping them.
    TOKENWARDEN_REQUIRE_TEMPORAL: '1',
    TOKENWARDEN_TEMPORAL_UNAVAILABLE: inject('temporalUnavailable') ?? '',
  });
  console.log(output.trim().split('\n').at(-1));
  expect(code, output).toBe(0);
});

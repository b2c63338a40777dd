// schemathesis (PyPI) against a running server's own OpenAPI document: installed on first use
// into a project-local venv, run as a child process, its JSON report read back.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { FuzzTarget } from './target.ts';

const run = promisify(execFile);

/** Pinned: a new release generates other cases and may add checks. */
export const SCHEMATHESIS_VERSION = '4.32.5';

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
const HOME = join(ROOT, '.cache', `schemathesis-${SCHEMATHESIS_VERSION}`);
/** Written last: a directory without it is half an install, redone. */
const INSTALLED = join(HOME, 'installed.json');

/**
 * The checks the API promises to pass: no 5xx, every answer as documented, and a request the
 * document says is malformed refused with a 4xx.
 */
export const CHECKS = [
  'not_a_server_error',
  'negative_data_rejection',
  'status_code_conformance',
  'content_type_conformance',
  'response_schema_conformance',
  'response_headers_conformance',
] as const;

/** How to start the CLI: `python -m schemathesis.cli` with this environment. */
export interface Schemathesis {
  python: string;
  env: Record<string, string>;
}

/**
 * The schemathesis CLI, installed into `.cache/` from PyPI when missing: into a venv, or where
 * python3 has no venv module (Debian without python3-venv), with pip into a directory put on
 * PYTHONPATH.
 */
export async function ensureSchemathesis(): Promise<Schemathesis> {
  if (existsSync(INSTALLED)) return JSON.parse(readFileSync(INSTALLED, 'utf8')) as Schemathesis;
  rmSync(HOME, { recursive: true, force: true });
  const pip = ['install', '--quiet', '--disable-pip-version-check'];
  const spec = `schemathesis==${SCHEMATHESIS_VERSION}`;
  let installed: Schemathesis;
  try {
    const venv = join(HOME, 'venv');
    const made = await run('python3', ['-m', 'venv', venv]).then(
      () => true,
      () => false,
    );
    if (made) {
      await run(join(venv, 'bin', 'pip'), [...pip, spec]);
      installed = { python: join(venv, 'bin', 'python'), env: {} };
    } else {
      rmSync(HOME, { recursive: true, force: true });
      const packages = join(HOME, 'packages');
      await run('python3', ['-m', 'pip', ...pip, '--target', packages, spec]);
      installed = { python: 'python3', env: { PYTHONPATH: packages } };
    }
  } catch (error) {
    rmSync(HOME, { recursive: true, force: true });
    throw error;
  }
  writeFileSync(INSTALLED, JSON.stringify(installed));
  return installed;
}

export type Caller = 'admin' | 'client';

export interface RunOptions {
  as: Caller;
  maxExamples: number;
  seed: number;
  phases?: string[];
  workers?: number;
  /** Default: CHECKS. */
  checks?: readonly string[];
}

/** One check of one operation, as the report counts it. */
export interface CheckFailure {
  operation: string;
  check: string;
  message: string;
}

export interface CheckCount {
  total: number;
  failed: number;
}

export interface RunResult {
  exitCode: number;
  /** The CLI's own summary, for a failure's message. */
  output: string;
  operations: string[];
  /** Test cases (requests) sent, per operation. */
  casesByOperation: Record<string, number>;
  /** How many times each check ran, and how many of those failed. */
  checks: Record<string, CheckCount>;
  /** The same per operation. */
  checksByOperation: Record<string, Record<string, CheckCount>>;
  failures: CheckFailure[];
}

/**
 * Runs every operation of the server's /docs/json as `as`, with the seeded names and ids mixed
 * into the generated values (half the time) so requests get past "not found" to real code.
 */
export async function runSchemathesis(target: FuzzTarget, options: RunOptions): Promise<RunResult> {
  const cli = await ensureSchemathesis();
  const dir = mkdtempSync(join(tmpdir(), 'tw-schemathesis-run-'));
  try {
    const config = join(dir, 'schemathesis.toml');
    // The key goes in the file (mode 0600), not on a command line any local user can read.
    writeFileSync(config, configToml(target, options.as), { mode: 0o600 });
    const reportPath = join(dir, 'report.ndjson');
    const args = [
      '-m',
      'schemathesis.cli',
      '--config-file',
      config,
      'run',
      `${target.url}/docs/json`,
      '--url',
      target.url,
      '--checks',
      (options.checks ?? CHECKS).join(','),
      '--max-examples',
      String(options.maxExamples),
      '--seed',
      String(options.seed),
      '--workers',
      String(options.workers ?? 1),
      '--phases',
      (options.phases ?? ['examples', 'coverage', 'fuzzing']).join(','),
      // A hand-out may wait up to the broker's maxWaitMs (20 s) for a provider that does not
      // answer (the admin's runs point providers anywhere); longer than this is a hang.
      '--request-timeout',
      '30',
      '--generation-database',
      'none',
      '--no-color',
      '--suppress-health-check',
      'all',
      '--report',
      'ndjson',
      '--report-ndjson-path',
      reportPath,
    ];
    const { exitCode, output } = await run(cli.python, args, {
      cwd: dir,
      maxBuffer: 64 * 1024 * 1024,
      env: { ...process.env, ...cli.env, NO_COLOR: '1' },
    }).then(
      ({ stdout, stderr }) => ({ exitCode: 0, output: stdout + stderr }),
      (error: { code?: number; stdout?: string; stderr?: string }) => {
        if (typeof error.code !== 'number') throw error;
        return { exitCode: error.code, output: `${error.stdout ?? ''}${error.stderr ?? ''}` };
      },
    );
    return { exitCode, output, ...readReport(reportPath) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The caller's key; the seeded values as dictionaries: each parameter takes one of them half the
 * time. Which 5xx are allowed: none for the client.
 */
function configToml(target: FuzzTarget, as: Caller): string {
  const { seeded } = target;
  const list = (values: string[]) => `[${values.map((value) => JSON.stringify(value)).join(', ')}]`;
  const bind = (keys: string[], dictionary: string) =>
    keys.map((key) => `"${key}" = { dictionary = "${dictionary}", probability = 0.5 }`).join('\n');
  const key = as === 'admin' ? target.adminKey : seeded.clientKey;
  return [
    '[headers]',
    `Authorization = ${JSON.stringify(`Bearer ${key}`)}`,
    '[dictionaries.connections]',
    `values = ${list(seeded.connectionIds)}`,
    '[dictionaries.providers]',
    `values = ${list([seeded.provider])}`,
    '[dictionaries.owners]',
    `values = ${list(seeded.owners)}`,
    '[dictionaries.redirects]',
    `values = ${list([seeded.redirectUri])}`,
    '[parameters]',
    bind(['path.id', 'query.connection_id', 'body.connection_id'], 'connections'),
    bind(['path.name', 'query.provider', 'body.provider'], 'providers'),
    bind(['query.owner', 'body.owner'], 'owners'),
    bind(['body.redirect_uri'], 'redirects'),
    // The admin reconfigures providers with whatever URLs were generated: a token or
    // introspection endpoint that does not answer is the documented, retryable 503
    // refresh_unavailable. The client cannot, so for it every 5xx is a failure.
    ...(as === 'admin'
      ? ['[checks.not_a_server_error]', 'expected-statuses = ["2xx", "3xx", "4xx", "503"]']
      : []),
    '',
  ].join('\n');
}

interface NdjsonEvent {
  [kind: string]: Record<string, unknown> | undefined;
}

/** The NDJSON event stream: one ScenarioFinished per operation and phase holds its checks. */
function readReport(path: string): Omit<RunResult, 'exitCode' | 'output'> {
  const casesByOperation: Record<string, number> = {};
  const checks: RunResult['checks'] = {};
  const checksByOperation: RunResult['checksByOperation'] = {};
  const failures: CheckFailure[] = [];
  const text = existsSync(path) ? readFileSync(path, 'utf8') : '';
  for (const line of text.split('\n')) {
    if (!line) continue;
    const event = JSON.parse(line) as NdjsonEvent;
    const finished = event.ScenarioFinished;
    if (!finished) continue;
    const recorder = finished.recorder as Recorder | undefined;
    const operation = recorder?.label ?? 'unknown';
    casesByOperation[operation] ??= 0;
    casesByOperation[operation] += Object.keys(recorder?.cases ?? {}).length;
    const ofOperation = (checksByOperation[operation] ??= {});
    for (const caseChecks of Object.values(recorder?.checks ?? {})) {
      for (const check of caseChecks) {
        const counted = [
          (checks[check.name] ??= { total: 0, failed: 0 }),
          (ofOperation[check.name] ??= { total: 0, failed: 0 }),
        ];
        for (const count of counted) count.total += 1;
        if (check.status === 'FAILURE' || check.status === 'failure') {
          for (const count of counted) count.failed += 1;
          failures.push({
            operation,
            check: check.name,
            message: check.failure_info?.failure?.title ?? '',
          });
        }
      }
    }
  }
  // The stateful phase reports its sequences of calls under a label of its own.
  const operations = Object.keys(casesByOperation).filter((label) => /^[A-Z]+ \//.test(label));
  return { operations: operations.sort(), casesByOperation, checks, checksByOperation, failures };
}

interface Recorder {
  label: string;
  cases: Record<string, unknown>;
  checks: Record<
    string,
    { name: string; status: string; failure_info?: { failure?: { title?: string } } }[]
  >;
}

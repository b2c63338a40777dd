// Runs the Go SDK's tests (`go test ./...` in sdks/go) from the suite: the shared scenarios, the
// 4 processes × 50 goroutines test and the Temporal workflows, on the run's Temporal server. Go
// modules and build outputs are kept in the project's .cache/go, so a second run builds nothing.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { ensureGo } from './go-toolchain.ts';

// The Temporal global setup's names for inject().
import type {} from '../../packages/testkit/src/temporal/provided.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const MODULE = fileURLToPath(new URL('./', import.meta.url));

/** One line of `go test -json` (test2json). */
interface TestEvent {
  Action: string;
  Package?: string;
  Test?: string;
  Output?: string;
}

const env = {
  ...process.env,
  GOMODCACHE: `${ROOT}.cache/go/mod`,
  GOCACHE: `${ROOT}.cache/go/build`,
  // go.sum is committed: a test run never edits go.mod.
  GOFLAGS: '-mod=readonly',
};
let goBinary = 'go';

function go(
  args: string[],
  timeout: number,
  extraEnv: Record<string, string> = {},
): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(goBinary, args, {
    cwd: MODULE,
    env: { ...env, ...extraEnv },
    encoding: 'utf8',
    timeout,
    maxBuffer: 64 << 20,
  });
  if (result.error) throw new Error(`${goBinary} ${args.join(' ')}: ${result.error.message}`);
  return result;
}

describe('the Go SDK (go test ./... in sdks/go)', () => {
  beforeAll(async () => {
    goBinary = await ensureGo(`${ROOT}.cache/go/toolchain`);
    // Downloads first, so that vet's and test's output is theirs alone ("go: downloading ...").
    const download = go(['mod', 'download'], 300_000);
    expect(download.status, download.stderr).toBe(0);
  }, 600_000);

  it('is gofmt-formatted and passes go vet', () => {
    const goroot = go(['env', 'GOROOT'], 60_000).stdout.trim();
    const unformatted = spawnSync(join(goroot, 'bin', 'gofmt'), ['-l', '.'], {
      cwd: MODULE,
      encoding: 'utf8',
    });
    expect(unformatted.error).toBeUndefined();
    expect(unformatted.stdout.trim(), 'files gofmt would change').toBe('');
    const vet = go(['vet', './...'], 600_000);
    expect(vet.stderr, 'go vet').toBe('');
    expect(vet.status).toBe(0);
  }, 600_000); // cold caches (a clean clone): vet compiles the Temporal SDK first

  it('passes every Go test, none skipped, on a real server and a real Temporal server', () => {
    const temporalAddress = inject('temporalAddress') ?? process.env.TEMPORAL_ADDRESS ?? '';
    expect(temporalAddress, inject('temporalUnavailable') || 'no Temporal server').not.toBe('');
    const run = go(['test', '-json', '-count=1', './...'], 600_000, {
      TEMPORAL_ADDRESS: temporalAddress,
    });
    const events = run.stdout
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as TestEvent);
    const outcome = new Map<string, string>();
    const output = new Map<string, string[]>();
    for (const event of events) {
      const name = `${event.Package ?? ''} ${event.Test ?? '(package)'}`;
      if (event.Output !== undefined) {
        if (!output.has(name)) output.set(name, []);
        output.get(name)!.push(event.Output);
      }
      // A package without tests is "skipped" as a whole; a skipped test is a failure here.
      const skipped = event.Action === 'skip' && event.Test !== undefined;
      if (event.Action === 'pass' || event.Action === 'fail' || skipped) {
        outcome.set(name, event.Action);
      }
    }
    const notPassed = [...outcome].filter(([, action]) => action !== 'pass');
    const report = notPassed
      .map(([name, action]) => `${action}: ${name}\n${(output.get(name) ?? []).join('')}`)
      .join('\n');
    expect(notPassed, report || run.stderr).toEqual([]);
    expect(run.status, run.stderr).toBe(0);
    // The done-when tests, by name: a rename must not drop one silently.
    const passed = [...outcome.keys()].map((name) => name.split(' ')[1]);
    expect(passed).toEqual(
      expect.arrayContaining([
        'TestScenarios',
        'TestProcessesShareOneRedemption',
        'TestTwentyActivitiesOneRedemption',
        'TestNeedsReauthIsNotRetried',
        'TestHeartbeatsWhileWaiting',
        'TestTheTLSErrorSaysWhatToGiveAndIsNotRetried',
        'TestARequestInsideASpanCarriesItsTraceContext',
        'TestTheActivitySpanIsTheParentOfTheHandOut',
      ]),
    );
  }, 600_000);
});

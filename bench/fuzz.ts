// Bad input at the API: schemathesis (PyPI) against a real `tokenwarden serve`'s own OpenAPI
// document, every operation, once as a service client and once as admin (in that order: the
// admin run deletes what the client's needs).
//
//   npm run bench:fuzz -- [--max-examples 500] [--seed 1] [--phases examples,coverage,fuzzing,stateful]
//
// Prints, per caller, operations × checks (runs and failures), the failures themselves, and
// whether the server was still healthy with no uncaught error in its log.
import { parseArgs } from 'node:util';
import {
  CHECKS,
  runSchemathesis,
  SCHEMATHESIS_VERSION,
  type Caller,
  type RunResult,
} from '../packages/server/test/schemathesis/run.ts';
import { startFuzzTarget } from '../packages/server/test/schemathesis/target.ts';
import { uncaughtErrors } from '../packages/server/test/schemathesis/server-log.ts';

const { values } = parseArgs({
  options: {
    'max-examples': { type: 'string', default: '500' },
    seed: { type: 'string', default: '1' },
    phases: { type: 'string', default: 'examples,coverage,fuzzing,stateful' },
  },
});
const maxExamples = Number(values['max-examples']);
const seed = Number(values.seed);
const phases = values.phases.split(',');

console.log(
  `bench:fuzz: schemathesis ${SCHEMATHESIS_VERSION}, --max-examples ${maxExamples}, ` +
    `--seed ${seed}, phases ${phases.join(',')}, checks ${CHECKS.join(',')}`,
);
const target = await startFuzzTarget();
let failed = false;
try {
  for (const as of ['client', 'admin'] as Caller[]) {
    const started = Date.now();
    const result = await runSchemathesis(target, { as, maxExamples, seed, phases });
    printRun(as, result, Date.now() - started);
    if (result.exitCode !== 0) failed = true;
  }
  const healthy = await target.healthy();
  const uncaught = uncaughtErrors(target.log());
  console.log(
    `\nserver afterwards: ${healthy ? 'healthy' : 'NOT healthy'}; uncaught errors in its log: ${uncaught.length}`,
  );
  for (const line of uncaught.slice(0, 10)) console.log(`  ${line}`);
  if (!healthy || uncaught.length > 0) failed = true;
} finally {
  await target.close();
}
process.exitCode = failed ? 1 : 0;

function printRun(as: Caller, result: RunResult, ms: number): void {
  const cases = Object.values(result.casesByOperation).reduce((a, b) => a + b, 0);
  console.log(
    `\nas ${as}: ${result.operations.length} operations, ${cases} test cases, ` +
      `${result.failures.length} check failures, exit ${result.exitCode}, ${(ms / 1000).toFixed(0)} s`,
  );
  // Operations × checks: runs, and failures after a slash when there are any.
  const checks = Object.keys(result.checks);
  const short = checks.map((check) => check.replace(/_conformance$/, '').slice(0, 16));
  const width = Math.max(...result.operations.map((op) => op.length));
  console.log(
    `  ${'operation'.padEnd(width)} ${'cases'.padStart(6)} ${short.map((c) => c.padStart(16)).join(' ')}`,
  );
  for (const operation of result.operations) {
    const counts = checks.map((check) => {
      const count = result.checksByOperation[operation]?.[check];
      if (!count) return '-';
      return count.failed > 0 ? `${count.total}/${count.failed} failed` : String(count.total);
    });
    console.log(
      `  ${operation.padEnd(width)} ${String(result.casesByOperation[operation]).padStart(6)} ${counts.map((c) => c.padStart(16)).join(' ')}`,
    );
  }
  const totals = checks.map((check) => {
    const { total, failed } = result.checks[check]!;
    return failed > 0 ? `${total}/${failed} failed` : String(total);
  });
  console.log(
    `  ${'all'.padEnd(width)} ${String(cases).padStart(6)} ${totals.map((c) => c.padStart(16)).join(' ')}`,
  );
  const distinct = new Map<string, number>();
  for (const failure of result.failures) {
    const key = `${failure.operation}: ${failure.check}: ${failure.message}`;
    distinct.set(key, (distinct.get(key) ?? 0) + 1);
  }
  for (const [key, count] of distinct) console.log(`  FAIL ×${count} ${key}`);
  // Which phases ran, and how long each took, as the CLI says it.
  const phases = /Test Phases:\n((?:.+\n)+)/.exec(result.output)?.[1];
  if (phases) console.log(`  phases:\n${phases.trimEnd()}`);
  // The CLI's own account of each failure: the request to reproduce it with (curl).
  if (result.exitCode !== 0) {
    const start = result.output.search(/={3,} (FAILURES|ERRORS) ={3,}/);
    const end = result.output.search(/={3,} (WARNINGS|SUMMARY) ={3,}/);
    console.log(result.output.slice(Math.max(0, start), end < 0 ? undefined : end).slice(0, 8000));
  }
}

// Bad input at the API, bounded: schemathesis (PyPI, installed into .cache/ on first use) runs
// every operation of a real `tokenwarden serve`'s own OpenAPI document, as a service client and
// as admin, and finds no 5xx and no answer the document does not describe. The long run is
// `npm run bench:fuzz`.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHECKS, ensureSchemathesis, runSchemathesis, type RunResult } from './schemathesis/run.ts';
import { uncaughtErrors } from './schemathesis/server-log.ts';
import { startFuzzTarget, type FuzzTarget } from './schemathesis/target.ts';

const SEED = 20_261_204;
// Five random cases per operation and the coverage phase's boundary values: about 1,700 requests
// per caller. bench:fuzz runs many more, and the stateful phase.
const MAX_EXAMPLES = 5;

let target: FuzzTarget;
let operations: string[];

beforeAll(async () => {
  // A clean machine downloads schemathesis from PyPI here; later runs find it in .cache/.
  await ensureSchemathesis();
  target = await startFuzzTarget();
  const document = (await (await fetch(`${target.url}/docs/json`)).json()) as {
    paths: Record<string, Record<string, unknown>>;
  };
  operations = Object.entries(document.paths)
    .flatMap(([path, methods]) => Object.keys(methods).map((m) => `${m.toUpperCase()} ${path}`))
    .sort();
}, 600_000);

afterAll(async () => {
  await target?.close();
});

/** What a failed run shows: the failures, then the CLI's last words. */
function explain(result: RunResult): string {
  const failures = result.failures.map((f) => `${f.operation}: ${f.check}: ${f.message}`);
  return [...failures, result.output.slice(-3000)].join('\n');
}

function expectClean(result: RunResult): void {
  expect(result.failures, explain(result)).toEqual([]);
  expect(result.exitCode, explain(result)).toBe(0);
  // Every operation of the document was tried, and every check ran.
  expect(result.operations).toEqual(operations);
  for (const operation of operations) expect(result.casesByOperation[operation]).toBeGreaterThan(0);
  for (const check of CHECKS) expect(result.checks[check]?.total ?? 0).toBeGreaterThan(0);
}

describe('schemathesis against the OpenAPI document', () => {
  // The client first: the admin's run deletes and reconfigures what the client's needs.
  it('finds nothing as a service client, whose requests reach its connection', async () => {
    const result = await runSchemathesis(target, {
      as: 'client',
      maxExamples: MAX_EXAMPLES,
      seed: SEED,
    });
    expectClean(result);
    // The seeded ids got past "not found": tokens were handed out to the client.
    const audit = await fetch(
      `${target.url}/v1/audit?connection=${target.seeded.connectionIds[0]}&client=${target.seeded.clientId}&limit=200`,
      { headers: { authorization: `Bearer ${target.adminKey}` } },
    );
    const { events } = (await audit.json()) as {
      events: { action: string; outcome: string }[];
    };
    const handOuts = events.filter((e) => e.action === 'token.read' && e.outcome === 'ok');
    expect(handOuts.length).toBeGreaterThan(0);
  }, 300_000);

  it('finds nothing as admin', async () => {
    expectClean(
      await runSchemathesis(target, { as: 'admin', maxExamples: MAX_EXAMPLES, seed: SEED }),
    );
  }, 300_000);

  it('leaves the server healthy, with no uncaught error in its log', async () => {
    expect(await target.healthy()).toBe(true);
    expect(uncaughtErrors(target.log())).toEqual([]);
  });
});

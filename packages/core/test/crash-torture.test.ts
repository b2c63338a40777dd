// The short version of `npm run bench:crash`: the bench's own cell function, one round per crash
// point and provider profile on SQLite, so that the bench cannot rot. Every branch of the
// recovery rule is asserted in detail by multi-process.test.ts; this checks the bench's verdicts.
import {
  CRASH_POINTS,
  CRASH_PROFILES,
  openCrashLane,
  runCrashCell,
  summarizeCrashRounds,
  TORTURE_PROFILES,
  type OpenedCrashLane,
} from '@tokenwarden/testkit';
import { afterEach, expect, it } from 'vitest';

let lanes: OpenedCrashLane[] = [];
afterEach(async () => {
  await Promise.all(lanes.map((lane) => lane.close()));
  lanes = [];
});

it('crash torture, one round per cell on SQLite: nothing lost but what the provider forbids keeping', async () => {
  // Every cell at once, each on a lane of its own: the rounds wait mostly for a dead lease.
  const cells = Object.entries(TORTURE_PROFILES).flatMap(([short, name]) =>
    CRASH_POINTS.map((point) => ({ short, name, point })),
  );
  lanes = await Promise.all(
    cells.map(({ name }) => openCrashLane({ profile: CRASH_PROFILES[name] })),
  );
  const summaries = await Promise.all(
    cells.map(async ({ short, point }, i) => ({
      cell: `${point}, ${short}`,
      ...summarizeCrashRounds(lanes[i]!, await runCrashCell([lanes[i]!], point, 1)),
    })),
  );

  for (const summary of summaries) {
    expect(summary, summary.cell).toMatchObject({
      rounds: 1,
      lost: 0,
      reuseViolations: 0,
      loops: 0,
    });
    expect(summary.recovered + summary.expectedLoss, summary.cell).toBe(1);
    const unavoidable = /^(waiting_for_provider|response_received), no grace$/.test(summary.cell);
    // Elsewhere only an answer that outlived its deadline on a loaded machine can cost the
    // credential, and only with no grace.
    if (unavoidable) expect(summary.expectedLoss, summary.cell).toBe(1);
    else expect(summary.expectedLoss, summary.cell).toBeLessThanOrEqual(summary.timedOut);
    expect(summary.recoveryMs === undefined, summary.cell).toBe(summary.recovered === 0);
  }
});

import { fileURLToPath } from 'node:url';
import { runWorkers } from '@tokenwarden/testkit';
import { describe, expect, it } from 'vitest';

const WORKER = fileURLToPath(new URL('./fixtures/worker.ts', import.meta.url));

interface BarrierResult {
  index: number;
  count: number;
  readyAt: number;
  goAt: number;
  pid: number;
}

describe('runWorkers', () => {
  it('releases all children together behind the barrier and collects their results', async () => {
    const results = await runWorkers<BarrierResult>({
      script: WORKER,
      args: ['barrier'],
      count: 3,
      barrier: true,
      timeoutMs: 20_000,
    });
    expect(results.map((r) => [r.index, r.exitCode, r.signal])).toEqual([
      [0, 0, null],
      [1, 0, null],
      [2, 0, null],
    ]);
    const values = results.map((r) => r.result!);
    expect(values.map((v) => [v.index, v.count])).toEqual([
      [0, 3],
      [1, 3],
      [2, 3],
    ]);
    expect(new Set(values.map((v) => v.pid)).size).toBe(3);
    // Nobody started before the slowest child was ready.
    const lastReady = Math.max(...values.map((v) => v.readyAt));
    for (const v of values) expect(v.goAt).toBeGreaterThanOrEqual(lastReady);
  });

  it('SIGKILLs a child that exceeds the timeout and still reports the others', async () => {
    const results = await runWorkers<{ index: number }>({
      script: WORKER,
      args: ['hang-one'],
      count: 2,
      timeoutMs: 2_500,
    });
    expect(results[0]).toMatchObject({ index: 0, exitCode: 0, signal: null, result: { index: 0 } });
    expect(results[1]).toMatchObject({ index: 1, exitCode: null, signal: 'SIGKILL' });
    expect(results[1]!.result).toBeUndefined();
    expect(results[1]!.stderr).toContain('worker 1 is hanging');
  });

  it('opens the barrier when a child dies before it is ready', async () => {
    const results = await runWorkers<{ index: number }>({
      script: WORKER,
      args: ['die-early'],
      count: 3,
      barrier: true,
      timeoutMs: 5_000,
    });
    expect(results.map((r) => [r.exitCode, r.result?.index])).toEqual([
      [3, undefined],
      [0, 1],
      [0, 2],
    ]);
    expect(results[0]!.stderr).toContain('gives up before the barrier');
  });

  it('keeps only the last 4 KiB of stderr', async () => {
    const [result] = await runWorkers<{ index: number }>({
      script: WORKER,
      args: ['noisy'],
      count: 1,
    });
    expect(result!.exitCode).toBe(0);
    expect(result!.stderr).toHaveLength(4096);
    expect(result!.stderr.endsWith('xEND\n')).toBe(true);
  });

  it('makes waitForStart fail fast when no barrier was requested', async () => {
    const [result] = await runWorkers({ script: WORKER, args: ['stray-wait'], count: 1 });
    expect(result!.exitCode).toBe(1);
    expect(result!.stderr).toContain('stdin closed before GO');
  });

  it('rejects a non-positive count', () => {
    expect(() => runWorkers({ script: WORKER, count: 0 })).toThrow(RangeError);
  });
});

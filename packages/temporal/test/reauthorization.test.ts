// The Reauthorization helper's logic, with @temporalio/workflow's runtime functions (setHandler,
// condition, log) replaced by a small deterministic stand-in: signals are delivered by the test,
// conditions are re-checked after each signal like the SDK does after each activation, and timers
// fire when the test says so. The real workflow runtime is exercised by the bundling test and by
// the end-to-end test against a Temporal server.
import {
  ActivityFailure,
  ApplicationFailure,
  ChildWorkflowFailure,
  RetryState,
} from '@temporalio/common';
import { FailureTypes, toApplicationFailure } from '@tokenwarden/temporal';
import { needsReauthOf, Reauthorization } from '@tokenwarden/temporal/workflow';
import { NeedsReauthError } from '@tokenwarden/client';
import { beforeEach, describe, expect, it, vi } from 'vitest';

const runtime = vi.hoisted(() => {
  interface Waiting {
    fn: () => boolean;
    timeout: unknown;
    resolve: (value: boolean) => void;
  }
  const handlers = new Map<string, (...args: unknown[]) => unknown>();
  let waiting: Waiting[] = [];
  const recheck = (): void => {
    waiting = waiting.filter((w) => {
      if (!w.fn()) return true;
      w.resolve(true);
      return false;
    });
  };
  return {
    handlers,
    reset(): void {
      handlers.clear();
      waiting = [];
    },
    get waiting(): readonly Waiting[] {
      return waiting;
    },
    signal(name: string, ...args: unknown[]): void {
      const handler = handlers.get(name);
      if (!handler) throw new Error(`no handler for signal ${name}`);
      handler(...args);
      recheck();
    },
    query(name: string): unknown {
      return handlers.get(name)!();
    },
    /** Every pending condition's timer fires. */
    timeOut(): void {
      for (const w of waiting) w.resolve(false);
      waiting = [];
    },
    condition(fn: () => boolean, timeout: unknown): Promise<boolean> {
      if (fn()) return Promise.resolve(true);
      return new Promise((resolve) => waiting.push({ fn, timeout, resolve }));
    },
  };
});

vi.mock('@temporalio/workflow', async (importOriginal) => ({
  ...(await importOriginal<typeof import('@temporalio/workflow')>()),
  setHandler: (def: { name: string }, handler: (...args: unknown[]) => unknown) =>
    runtime.handlers.set(def.name, handler),
  condition: runtime.condition,
  log: { warn: () => undefined, info: () => undefined, debug: () => undefined },
}));

const SIGNAL = 'tokenwarden.reauthorized';
const QUERY = 'tokenwarden.pendingReauthorizations';
const flush = () => new Promise((resolve) => setImmediate(resolve));

/** What a workflow sees when an activity failed with TokenwardenNeedsReauth. */
function needsReauthActivityFailure(connectionId: string, reason = 'invalid_grant') {
  const cause = toApplicationFailure(
    new NeedsReauthError('m', reason, { connectionId }),
    connectionId,
  );
  return new ActivityFailure(
    'Activity task failed',
    'callProtectedApi',
    '1',
    RetryState.NON_RETRYABLE_FAILURE,
    'worker',
    cause,
  );
}

/** An activity stand-in: fails with needs_reauth while `broken` holds, and counts its runs. */
function connectionStep(connectionId: string) {
  const state = { broken: true, runs: 0 };
  const step = async (): Promise<string> => {
    state.runs++;
    await flush();
    if (state.broken) throw needsReauthActivityFailure(connectionId);
    return 'ok';
  };
  return { state, step };
}

beforeEach(() => runtime.reset());

describe('Reauthorization.run', () => {
  it('waits for the reauthorized signal, then runs the failed step again; finished steps stay done', async () => {
    const notified: unknown[] = [];
    const reauth = new Reauthorization({
      timeout: '2 days',
      onNeedsReauth: (details) => void notified.push(details),
    });
    const { state, step } = connectionStep('conn_a');

    state.broken = false;
    const done: string[] = [await reauth.run(step), await reauth.run(step)];
    state.broken = true;
    const third = reauth.run(step);
    await flush();
    await flush();

    expect(state.runs).toBe(3);
    expect(notified).toEqual([{ connectionId: 'conn_a', reason: 'invalid_grant' }]);
    expect(runtime.waiting).toHaveLength(1);
    expect(runtime.waiting[0]!.timeout).toBe('2 days');
    expect(runtime.query(QUERY)).toEqual([
      {
        connectionId: 'conn_a',
        reason: 'invalid_grant',
        since: expect.any(Number),
        waitingSteps: 1,
      },
    ]);

    // Another connection's signal, or a malformed one, does not release it.
    runtime.signal(SIGNAL, { connectionId: 'conn_b' });
    runtime.signal(SIGNAL, {});
    runtime.signal(SIGNAL, null);
    await flush();
    expect(state.runs).toBe(3);

    state.broken = false; // the owner authorized again; the new tokens are in Tokenwarden
    runtime.signal(SIGNAL, { connectionId: 'conn_a' });
    done.push(await third);

    expect(done).toEqual(['ok', 'ok', 'ok']);
    expect(state.runs).toBe(4); // the two finished steps never ran again
    expect(runtime.query(QUERY)).toEqual([]);
  });

  it('concurrent steps on one connection: one notification, one signal releases them all', async () => {
    let notifications = 0;
    const reauth = new Reauthorization({ onNeedsReauth: () => void notifications++ });
    const { state, step } = connectionStep('conn_a');
    const steps = Array.from({ length: 5 }, () => reauth.run(step));
    for (let i = 0; i < 4; i++) await flush();

    expect(notifications).toBe(1);
    expect(runtime.waiting).toHaveLength(5);
    expect(runtime.query(QUERY)).toEqual([
      expect.objectContaining({ connectionId: 'conn_a', waitingSteps: 5 }),
    ]);

    state.broken = false;
    runtime.signal(SIGNAL, { connectionId: 'conn_a' });
    expect(await Promise.all(steps)).toEqual(Array(5).fill('ok'));
    expect(state.runs).toBe(10);
    expect(runtime.query(QUERY)).toEqual([]);
  });

  it('a signal that arrives while the step is still running counts: the step runs again at once', async () => {
    const reauth = new Reauthorization();
    let runs = 0;
    const racing = async (): Promise<string> => {
      runs++;
      if (runs > 1) return 'ok';
      // The owner reconnects (and the signal arrives) before this attempt's failure does.
      runtime.signal(SIGNAL, { connectionId: 'conn_a' });
      await flush();
      throw needsReauthActivityFailure('conn_a');
    };
    await expect(reauth.run(racing)).resolves.toBe('ok');
    expect(runs).toBe(2);
    expect(runtime.waiting).toHaveLength(0);
  });

  it('a signal for an earlier episode does not release a later one', async () => {
    const reauth = new Reauthorization();
    const { state, step } = connectionStep('conn_a');
    runtime.signal(SIGNAL, { connectionId: 'conn_a' }); // long before this step
    const pending = reauth.run(step);
    await flush();
    await flush();
    expect(runtime.waiting).toHaveLength(1);
    state.broken = false;
    runtime.signal(SIGNAL, { connectionId: 'conn_a' });
    await expect(pending).resolves.toBe('ok');
  });

  it('no signal within the timeout: the non-retryable TokenwardenReauthorizationTimeout', async () => {
    const reauth = new Reauthorization({ timeout: '1 hour' });
    const { step } = connectionStep('conn_a');
    const pending = reauth.run(step);
    const outcome = pending.catch((e: unknown) => e);
    await flush();
    await flush();
    runtime.timeOut();
    const error = (await outcome) as ApplicationFailure;
    expect(error).toBeInstanceOf(ApplicationFailure);
    expect(error.type).toBe(FailureTypes.ReauthorizationTimeout);
    expect(error.nonRetryable).toBe(true);
    expect(error.details).toEqual([{ connectionId: 'conn_a', reason: 'invalid_grant' }]);
    expect(error.message).toContain('1 hour');
    expect(runtime.query(QUERY)).toEqual([]);
  });

  it('other failures pass through unchanged and at once', async () => {
    const reauth = new Reauthorization();
    const other = new ActivityFailure(
      'failed',
      't',
      '1',
      RetryState.MAXIMUM_ATTEMPTS_REACHED,
      'w',
      ApplicationFailure.retryable('boom', 'ProtectedApiError'),
    );
    await expect(
      reauth.run(async () => {
        throw other;
      }),
    ).rejects.toBe(other);
    expect(runtime.waiting).toHaveLength(0);
  });

  it('a failing onNeedsReauth fails the step and leaves nothing pending', async () => {
    const reauth = new Reauthorization({
      onNeedsReauth: () => {
        throw new Error('mailer down');
      },
    });
    const { step } = connectionStep('conn_a');
    await expect(reauth.run(step)).rejects.toThrow('mailer down');
    expect(runtime.query(QUERY)).toEqual([]);
  });
});

describe('needsReauthOf', () => {
  it('finds the details through activity and child workflow failures', () => {
    const activity = needsReauthActivityFailure('conn_a', 'refresh_in_doubt');
    expect(needsReauthOf(activity)).toEqual({ connectionId: 'conn_a', reason: 'refresh_in_doubt' });
    const child = new ChildWorkflowFailure(
      'default',
      { workflowId: 'w', runId: 'r' },
      'child',
      RetryState.NON_RETRYABLE_FAILURE,
      activity,
    );
    expect(needsReauthOf(child)).toEqual({ connectionId: 'conn_a', reason: 'refresh_in_doubt' });
    expect(needsReauthOf(activity.cause)).toEqual({
      connectionId: 'conn_a',
      reason: 'refresh_in_doubt',
    });
  });

  it('ignores other failures and malformed details', () => {
    expect(needsReauthOf(new Error('x'))).toBeUndefined();
    expect(needsReauthOf('x')).toBeUndefined();
    expect(
      needsReauthOf(ApplicationFailure.nonRetryable('m', FailureTypes.NeedsReauth)),
    ).toBeUndefined();
    expect(
      needsReauthOf(
        ApplicationFailure.nonRetryable('m', FailureTypes.NeedsReauth, { connectionId: 1 }),
      ),
    ).toBeUndefined();
    expect(
      needsReauthOf(
        ApplicationFailure.nonRetryable('m', 'Other', { connectionId: 'c', reason: 'r' }),
      ),
    ).toBeUndefined();
    // A plain Error's cause is not followed: only Temporal failures wrap activity outcomes.
    const wrapped = new Error('x', { cause: needsReauthActivityFailure('conn_a') });
    expect(needsReauthOf(wrapped)).toBeUndefined();
  });
});

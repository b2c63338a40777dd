// The Reauthorization helper in Temporal's real workflow runtime, without a server: the worker
// replays hand-written histories (Worker.runReplayHistory runs the bundled workflow code in the
// sandbox with the SDK's Rust core) and fails on any command the code issues that the history
// does not have. So the histories below are what the helper must do, event by event.
import {
  ApplicationFailure,
  defaultFailureConverter,
  defaultPayloadConverter,
} from '@temporalio/common';
import proto from '@temporalio/proto';
import { DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import { FailureTypes } from '@tokenwarden/temporal';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { sourceConditionsHook, workflowsPath } from '../../../examples/temporal/bundling.ts';

const { EventType, RetryState } = proto.temporal.api.enums.v1;
/** An event as `History.fromObject` reads it (plain numbers where the proto has Longs). */
type Event = Record<string, unknown>;

const CONNECTION = 'conn_replay';
const QUEUE = 'replay';
const payloads = (...values: unknown[]) => ({
  payloads: values.map((v) => defaultPayloadConverter.toPayload(v)!),
});
// This file runs in its own process: the runtime can be quiet (the nondeterminism the negative
// tests provoke is reported by the rejected promise, not only in the log).
Runtime.install({
  logger: new DefaultLogger('ERROR'),
  telemetryOptions: { logging: { filter: { core: 'ERROR', other: 'ERROR' } } },
});

/** Builds a history: ids and times are assigned in order. */
function history(events: Event[]) {
  const start = 1_800_000_000;
  return proto.temporal.api.history.v1.History.fromObject({
    events: events.map((event, i) => ({
      ...event,
      eventId: i + 1,
      eventTime: { seconds: start + i, nanos: 0 },
    })),
  });
}

function workflowTask(scheduled: number): Event[] {
  return [
    {
      eventType: EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
      workflowTaskScheduledEventAttributes: {
        taskQueue: { name: QUEUE },
        startToCloseTimeout: { seconds: 10 },
        attempt: 1,
      },
    },
    {
      eventType: EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED,
      workflowTaskStartedEventAttributes: { scheduledEventId: scheduled, identity: 'replay' },
    },
    {
      eventType: EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
      workflowTaskCompletedEventAttributes: {
        scheduledEventId: scheduled,
        startedEventId: scheduled + 1,
        identity: 'replay',
      },
    },
  ];
}

function started(workflowType = 'reauthFixture', input: unknown[] = [CONNECTION]): Event {
  return {
    eventType: EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED,
    workflowExecutionStartedEventAttributes: {
      workflowType: { name: workflowType },
      taskQueue: { name: QUEUE },
      input: payloads(...input),
      workflowTaskTimeout: { seconds: 10 },
      originalExecutionRunId: 'run-1',
      firstExecutionRunId: 'run-1',
      attempt: 1,
      identity: 'replay',
    },
  };
}

function activityScheduled(
  activityId: string,
  completedTask: number,
  activityType = 'callApi',
  input: unknown[] = [CONNECTION],
) {
  return {
    eventType: EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED,
    activityTaskScheduledEventAttributes: {
      activityId,
      activityType: { name: activityType },
      taskQueue: { name: QUEUE },
      input: payloads(...input),
      startToCloseTimeout: { seconds: 60 },
      workflowTaskCompletedEventId: completedTask,
    },
  };
}

function activityStarted(scheduled: number) {
  return {
    eventType: EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED,
    activityTaskStartedEventAttributes: { scheduledEventId: scheduled, identity: 'w', attempt: 1 },
  };
}

/** The activity failed the way the helpers fail it on needs_reauth. */
function needsReauthFailed(scheduled: number) {
  const failure = ApplicationFailure.create({
    type: FailureTypes.NeedsReauth,
    message: `Connection "${CONNECTION}" needs its owner to authorize again (invalid_grant).`,
    nonRetryable: true,
    details: [{ connectionId: CONNECTION, reason: 'invalid_grant' }],
  });
  return {
    eventType: EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED,
    activityTaskFailedEventAttributes: {
      failure: defaultFailureConverter.errorToFailure(failure, defaultPayloadConverter),
      scheduledEventId: scheduled,
      startedEventId: scheduled + 1,
      identity: 'w',
      retryState: RetryState.RETRY_STATE_NON_RETRYABLE_FAILURE,
    },
  };
}

const FIXTURE = fileURLToPath(new URL('./fixtures/reauth-workflow.ts', import.meta.url));

async function replay(events: ReturnType<typeof history>, path = FIXTURE): Promise<void> {
  await Worker.runReplayHistory(
    {
      workflowsPath: path,
      bundlerOptions: { webpackConfigHook: sourceConditionsHook },
    },
    events,
    'replay-workflow',
  );
}

function timerStarted(completedTask: number, seconds = 3600): Event {
  // condition(…, '1 hour')
  return {
    eventType: EventType.EVENT_TYPE_TIMER_STARTED,
    timerStartedEventAttributes: {
      timerId: '1',
      startToFireTimeout: { seconds },
      workflowTaskCompletedEventId: completedTask,
    },
  };
}

/** The step fails with needs_reauth, a signal names `signalled`, the step runs again and succeeds. */
function reauthorizedHistory(signalled: string) {
  return history([
    started(), // 1
    ...workflowTask(2), // 2-4
    activityScheduled('1', 4), // 5
    activityStarted(5), // 6
    needsReauthFailed(5), // 7
    ...workflowTask(8), // 8-10
    timerStarted(10), // 11
    reauthorizedSignal(signalled), // 12
    ...workflowTask(13), // 13-15
    timerCanceled(11, 15), // 16
    activityScheduled('2', 15), // 17
    activityStarted(17), // 18
    activityCompleted(17, 'ok'), // 19
    ...workflowTask(20), // 20-22
    workflowCompleted(22, 'ok'), // 23
  ]);
}

/** The web backend's signal that `connectionId` was re-authorized. */
function reauthorizedSignal(connectionId: string): Event {
  return {
    eventType: EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED,
    workflowExecutionSignaledEventAttributes: {
      signalName: 'tokenwarden.reauthorized',
      input: payloads({ connectionId }),
      identity: 'web-backend',
    },
  };
}

/** Timer '1' (started at event `startedEventId`) cancelled by the workflow task `completedTask`. */
function timerCanceled(startedEventId: number, completedTask: number): Event {
  return {
    eventType: EventType.EVENT_TYPE_TIMER_CANCELED,
    timerCanceledEventAttributes: {
      timerId: '1',
      startedEventId,
      workflowTaskCompletedEventId: completedTask,
      identity: 'replay',
    },
  };
}

function activityCompleted(scheduled: number, result: unknown): Event {
  return {
    eventType: EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED,
    activityTaskCompletedEventAttributes: {
      result: payloads(result),
      scheduledEventId: scheduled,
      startedEventId: scheduled + 1,
      identity: 'w',
    },
  };
}

function workflowCompleted(completedTask: number, result: unknown): Event {
  return {
    eventType: EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
    workflowExecutionCompletedEventAttributes: {
      result: payloads(result),
      workflowTaskCompletedEventId: completedTask,
    },
  };
}

describe('Reauthorization replayed in the Temporal workflow runtime', () => {
  it('needs_reauth → a timer for the timeout; the signal → the timer cancelled and the step run again', async () => {
    await expect(replay(reauthorizedHistory(CONNECTION))).resolves.toBeUndefined();
  });

  it('a signal for another connection releases nothing (the same history no longer replays)', async () => {
    await expect(replay(reauthorizedHistory('conn_someone_else'))).rejects.toThrow(
      /[Nn]ondetermini/,
    );
  });

  it('no signal before the timer fires: the workflow fails with TokenwardenReauthorizationTimeout', async () => {
    const timeout = ApplicationFailure.create({
      type: FailureTypes.ReauthorizationTimeout,
      message: 'x',
      nonRetryable: true,
      details: [{ connectionId: CONNECTION, reason: 'invalid_grant' }],
    });
    const failed = (completedTask: number): Event => ({
      eventType: EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
      workflowExecutionFailedEventAttributes: {
        failure: defaultFailureConverter.errorToFailure(timeout, defaultPayloadConverter),
        retryState: RetryState.RETRY_STATE_RETRY_POLICY_NOT_SET,
        workflowTaskCompletedEventId: completedTask,
      },
    });
    const events: Event[] = [
      started(), // 1
      ...workflowTask(2), // 2-4
      activityScheduled('1', 4), // 5
      activityStarted(5), // 6
      needsReauthFailed(5), // 7
      ...workflowTask(8), // 8-10
      timerStarted(10), // 11
      {
        eventType: EventType.EVENT_TYPE_TIMER_FIRED,
        timerFiredEventAttributes: { timerId: '1', startedEventId: 11 },
      }, // 12
      ...workflowTask(13), // 13-15
    ];
    await expect(replay(history([...events, failed(15)]))).resolves.toBeUndefined();

    // Control: had the workflow completed instead, the replay would not match.
    await expect(replay(history([...events, workflowCompleted(15, 'ok')]))).rejects.toThrow();
  });
});

describe('the example fanOutWorkflow replayed', () => {
  const input = { connectionId: CONNECTION, calls: 1, concurrency: 1 };
  const call = [CONNECTION, 0];

  it('one call that succeeds', async () => {
    const events = history([
      started('fanOutWorkflow', [input]), // 1
      ...workflowTask(2), // 2-4
      activityScheduled('1', 4, 'callProtectedApi', call), // 5
      activityStarted(5), // 6
      activityCompleted(5, { ok: true, call: 0 }), // 7
      ...workflowTask(8), // 8-10
      workflowCompleted(10, { calls: 1, succeeded: 1, waitedForReauthorization: 0 }), // 11
    ]);
    await expect(replay(events, workflowsPath)).resolves.toBeUndefined();
  });

  it('needs_reauth: the owner is notified once, the call waits for the signal and then succeeds', async () => {
    const events = history([
      started('fanOutWorkflow', [input]), // 1
      ...workflowTask(2), // 2-4
      activityScheduled('1', 4, 'callProtectedApi', call), // 5
      activityStarted(5), // 6
      needsReauthFailed(5), // 7
      ...workflowTask(8), // 8-10
      activityScheduled('2', 10, 'notifyOwner', [CONNECTION, 'invalid_grant']), // 11
      activityStarted(11), // 12
      activityCompleted(11, undefined), // 13
      ...workflowTask(14), // 14-16
      timerStarted(16, 7 * 24 * 3600), // 17: the default timeout, 7 days
      reauthorizedSignal(CONNECTION), // 18
      ...workflowTask(19), // 19-21
      timerCanceled(17, 21), // 22
      activityScheduled('3', 21, 'callProtectedApi', call), // 23
      activityStarted(23), // 24
      activityCompleted(23, { ok: true, call: 0 }), // 25
      ...workflowTask(26), // 26-28
      workflowCompleted(28, { calls: 1, succeeded: 1, waitedForReauthorization: 1 }), // 29
    ]);
    await expect(replay(events, workflowsPath)).resolves.toBeUndefined();
  });
});

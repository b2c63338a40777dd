// The example workflow: fans out concurrent activities that call a protected API with the
// connection's access token. The workflow passes the connection id, never a token. If the
// connection needs its owner again, every waiting call continues after the `reauthorized` signal
// and the calls already done stay done.
//
// Workflow code: imports only @temporalio/workflow, @tokenwarden/temporal/workflow and types.
import { proxyActivities, sleep } from '@temporalio/workflow';
import { FailureTypes, Reauthorization } from '@tokenwarden/temporal/workflow';
import type { ExampleActivities } from './activities.ts';

const { callProtectedApi } = proxyActivities<ExampleActivities>({
  startToCloseTimeout: '1 minute',
  // The helpers heartbeat while they wait for a refresh, so a worker that died is noticed fast.
  heartbeatTimeout: '10 seconds',
  retry: {
    initialInterval: '1 second',
    maximumAttempts: 10,
    // TokenwardenNeedsReauth is already non-retryable; saying so here documents it.
    nonRetryableErrorTypes: [FailureTypes.NeedsReauth, FailureTypes.AccessDenied],
  },
});

const { notifyOwner } = proxyActivities<ExampleActivities>({
  startToCloseTimeout: '30 seconds',
});

export interface FanOutInput {
  connectionId: string;
  /** How many API calls in total. */
  calls: number;
  /** How many run at once. */
  concurrency: number;
  /** Workflow time each lane waits between two calls (a timer), so that a run spans token expiries. */
  pauseBetweenCallsMs?: number;
  /** How long to wait for the owner to authorize again. Default 7 days. */
  reauthorizationTimeout?: string;
}

export interface FanOutResult {
  calls: number;
  succeeded: number;
  /** How many times a call had to wait for the owner to authorize again. */
  waitedForReauthorization: number;
}

export async function fanOutWorkflow(input: FanOutInput): Promise<FanOutResult> {
  let waited = 0;
  const reauth = new Reauthorization({
    ...(input.reauthorizationTimeout === undefined
      ? {}
      : { timeout: input.reauthorizationTimeout }),
    onNeedsReauth: async ({ connectionId, reason }) => {
      waited++;
      await notifyOwner(connectionId, reason);
    },
  });

  let next = 0;
  let succeeded = 0;
  const lane = async (): Promise<void> => {
    while (next < input.calls) {
      const call = next++;
      const { ok } = await reauth.run(() => callProtectedApi(input.connectionId, call));
      if (ok) succeeded++;
      if (input.pauseBetweenCallsMs) await sleep(input.pauseBetweenCallsMs);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, input.concurrency) }, lane));
  return { calls: input.calls, succeeded, waitedForReauthorization: waited };
}

// One worker process of the multi-process test: one TokenwardenClient and one set of activity
// helpers, as a Temporal worker has, released with its siblings by the harness, then `activities`
// concurrent runs of the example's callProtectedApi activity, each in its own
// MockActivityEnvironment (its own activity context, heartbeats counted). Reports outcomes, token
// fingerprints (never a token) and how many API requests this process made.
//   activity-worker.ts <baseUrl> <connectionId> <activities> <resourceUrl> <warm|cold>
// The API key comes in TW_API_KEY.
import { MockActivityEnvironment } from '@temporalio/testing';
import { ApplicationFailure } from '@temporalio/common';
import { TokenwardenClient } from '@tokenwarden/client';
import { createActivityHelpers } from '@tokenwarden/temporal';
import { reportResult, tokenFingerprint, waitForStart } from '@tokenwarden/testkit';
import { createExampleActivities } from '../../../../examples/temporal/activities.ts';

export interface ActivityWorkerResult {
  succeeded: number;
  /** `type: message` of each failed activity. */
  failures: string[];
  heartbeats: number;
  apiRequests: { token: number; rejected: number };
  /** The token this process holds at the end. */
  fingerprint: string;
  version: number;
}

const [baseUrl, connectionId, count, resourceUrl, warmth] = process.argv.slice(2) as [
  string,
  string,
  string,
  string,
  string,
];
const apiRequests = { token: 0, rejected: 0 };
const client = new TokenwardenClient({
  baseUrl,
  apiKey: process.env.TW_API_KEY!,
  fetch: (input, init) => {
    const url = String(input instanceof Request ? input.url : input);
    if (url.endsWith('/token')) apiRequests.token++;
    if (url.endsWith('/token/rejected')) apiRequests.rejected++;
    return fetch(input, init);
  },
});
const helpers = createActivityHelpers(client, { heartbeatIntervalMs: 20 });
const { callProtectedApi } = createExampleActivities({ helpers, resourceUrl });

// 'warm': the worker already holds the token the resource server is about to refuse, as a
// long-running worker would.
if (warmth === 'warm') await client.getAccessToken(connectionId);
await waitForStart();

const result: ActivityWorkerResult = {
  succeeded: 0,
  failures: [],
  heartbeats: 0,
  apiRequests,
  fingerprint: '',
  version: 0,
};
const silent = { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} };
await Promise.all(
  Array.from({ length: Number(count) }, async (_, i) => {
    const env = new MockActivityEnvironment(
      { activityId: `call-${i}`, activityType: 'callProtectedApi', heartbeatTimeoutMs: 10_000 },
      { logger: silent },
    );
    env.on('heartbeat', () => result.heartbeats++);
    try {
      await env.run(callProtectedApi, connectionId, i);
      result.succeeded++;
    } catch (error) {
      result.failures.push(
        error instanceof ApplicationFailure
          ? `${error.type}: ${error.message}`
          : String((error as Error).name),
      );
    }
  }),
);
const token = await client.getAccessToken(connectionId);
result.fingerprint = tokenFingerprint(token.accessToken);
result.version = token.version;
await reportResult(result);

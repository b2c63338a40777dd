import {
  ApplicationFailure,
  CancelledFailure,
  defaultFailureConverter,
  defaultPayloadConverter,
} from '@temporalio/common';
import proto from '@temporalio/proto';
import { MockActivityEnvironment } from '@temporalio/testing';
import { TokenwardenClient, TokenwardenError } from '@tokenwarden/client';
import {
  createActivityHelpers,
  FailureTypes,
  isUnauthorizedError,
  TokenRejectedError,
  type AccessToken,
  type ActivityHelpersOptions,
} from '@tokenwarden/temporal';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { API, API_KEY, RESOURCE, ScriptedTokenwarden } from './support/scripted-tokenwarden.ts';

const CONNECTION = 'conn_activity';
let tw: ScriptedTokenwarden;
let client: TokenwardenClient;

beforeEach(() => {
  tw = new ScriptedTokenwarden();
  client = new TokenwardenClient({
    baseUrl: API,
    apiKey: API_KEY,
    fetch: tw.fetch,
    retry: { maxAttempts: 1 },
  });
});

function helpers(options?: ActivityHelpersOptions) {
  return createActivityHelpers(client, options);
}

// Everything the worker would log about these activities (failures included), checked for secrets.
const logged: string[] = [];
const record = (level: string) => (message: string, meta?: unknown) => {
  const error = (meta as { error?: Error } | undefined)?.error;
  logged.push(
    `${level} ${message} ${JSON.stringify(meta)} ${error?.message ?? ''} ${error?.stack ?? ''}`,
  );
};
const logger = {
  log: (level: string, message: string, meta?: unknown) => record(level)(message, meta),
  trace: record('TRACE'),
  debug: record('DEBUG'),
  info: record('INFO'),
  warn: record('WARN'),
  error: record('ERROR'),
};
afterEach(() => {
  for (const line of logged) {
    for (const secret of [API_KEY, 'at_v1_secret', 'at_v2_secret', 'at_v3_secret']) {
      expect(line).not.toContain(secret);
    }
  }
  logged.length = 0;
});

/** One activity attempt, its heartbeats counted. */
function activityEnvironment(info: ConstructorParameters<typeof MockActivityEnvironment>[0] = {}) {
  const env = new MockActivityEnvironment({ heartbeatTimeoutMs: 30_000, ...info }, { logger });
  const heartbeats: unknown[] = [];
  env.on('heartbeat', (details: unknown) => heartbeats.push(details));
  return { env, heartbeats };
}

async function failureOf(promise: Promise<unknown>): Promise<ApplicationFailure> {
  const error = await promise.then(
    () => {
      throw new Error('expected the activity to fail');
    },
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ApplicationFailure);
  return error as ApplicationFailure;
}

/** What Temporal would store in workflow history for this failure. */
function historyBytes(error: Error): string {
  const failure = defaultFailureConverter.errorToFailure(error, defaultPayloadConverter);
  return Buffer.from(proto.temporal.api.failure.v1.Failure.encode(failure).finish()).toString(
    'latin1',
  );
}

function expectNoSecret(error: Error): void {
  const stored = historyBytes(error);
  for (const secret of [API_KEY, 'at_v1_secret', 'at_v2_secret', 'secret']) {
    expect(stored).not.toContain(secret);
    expect(error.message).not.toContain(secret);
  }
}

describe('a 401 from the resource server', () => {
  it('fetch: one report, one refresh, and the activity succeeds with the fresh token', async () => {
    const { fetch } = helpers();
    const { env } = activityEnvironment();
    const call = () =>
      env.run(async () => {
        const res = await fetch(CONNECTION, RESOURCE);
        return res.status;
      });
    expect(await call()).toBe(200);
    tw.expireCurrentToken();

    expect(await call()).toBe(200);
    expect(tw.refreshes).toBe(1);
    expect(tw.rejectedReports).toBe(1);
    expect(tw.resourceRejections).toBe(1);
    expect(logged.length).toBeGreaterThan(0); // the logger does see the activities
    expect(tw.resourceRequests).toBe(3);
    expect(tw.tokenRequests).toBe(1); // the first token was cached; the fresh one came with the report
  });

  it('20 concurrent activities that all meet the 401: exactly one refresh, all succeed', async () => {
    const { fetch } = helpers();
    await activityEnvironment().env.run(() => fetch(CONNECTION, RESOURCE));
    tw.expireCurrentToken();

    const statuses = await Promise.all(
      Array.from({ length: 20 }, () =>
        activityEnvironment().env.run(async () => (await fetch(CONNECTION, RESOURCE)).status),
      ),
    );
    expect(statuses).toEqual(Array(20).fill(200));
    expect(tw.refreshes).toBe(1);
    expect(tw.rejectedReports).toBe(1); // the SDK shares one report per process
  });

  it('withAccessToken: fn runs again once with the fresh token; the second refusal is thrown as is', async () => {
    const { withAccessToken } = helpers();
    const seen: string[] = [];
    const useToken = async ({ accessToken }: { accessToken: string }) => {
      seen.push(accessToken);
      if (!tw.valid.has(accessToken)) throw Object.assign(new Error('HTTP 401'), { status: 401 });
      return 'done';
    };
    const { env } = activityEnvironment();
    tw.expireCurrentToken();
    expect(await env.run(() => withAccessToken(CONNECTION, useToken))).toBe('done');
    expect(seen).toEqual(['at_v1_secret', 'at_v2_secret']);
    expect(tw.refreshes).toBe(1);

    // The fresh token is refused as well: reported once more, then fn's own error surfaces.
    seen.length = 0;
    let calls = 0;
    const alwaysRefused = () => {
      calls++;
      throw new TokenRejectedError();
    };
    await expect(env.run(() => withAccessToken(CONNECTION, alwaysRefused))).rejects.toBeInstanceOf(
      TokenRejectedError,
    );
    expect(calls).toBe(2);
    expect(tw.refreshes).toBe(2);
  });

  it('errors from fn that are not a 401 pass through unchanged, without a report', async () => {
    const { withAccessToken } = helpers();
    const boom = Object.assign(new Error('HTTP 500'), { status: 500 });
    await expect(
      activityEnvironment().env.run(() =>
        withAccessToken(CONNECTION, () => {
          throw boom;
        }),
      ),
    ).rejects.toBe(boom);
    expect(tw.rejectedReports).toBe(0);
  });

  it('isUnauthorizedError: the usual 401 shapes, but not Tokenwarden refusing the API key', () => {
    expect(isUnauthorizedError(new TokenRejectedError())).toBe(true);
    expect(isUnauthorizedError({ status: 401 })).toBe(true);
    expect(isUnauthorizedError({ statusCode: 401 })).toBe(true);
    expect(isUnauthorizedError({ response: { status: 401 } })).toBe(true);
    expect(isUnauthorizedError({ response: { statusCode: 401 } })).toBe(true);
    expect(isUnauthorizedError({ status: 403 })).toBe(false);
    expect(isUnauthorizedError(null)).toBe(false);
    expect(isUnauthorizedError(new TokenwardenError('unauthorized', 'x', { status: 401 }))).toBe(
      false,
    );
  });
});

describe('failures', () => {
  it('needs_reauth: the non-retryable TokenwardenNeedsReauth with connection id and reason', async () => {
    tw.errors.push({
      status: 409,
      body: { error: 'needs_reauth', reason: 'invalid_grant', message: 'needs reauth' },
    });
    const { fetch } = helpers();
    const failure = await failureOf(
      activityEnvironment().env.run(() => fetch(CONNECTION, RESOURCE)),
    );
    expect(failure.type).toBe(FailureTypes.NeedsReauth);
    expect(failure.type).toBe('TokenwardenNeedsReauth');
    expect(failure.nonRetryable).toBe(true);
    expect(failure.details).toEqual([{ connectionId: CONNECTION, reason: 'invalid_grant' }]);
    expect(failure.message).toContain(CONNECTION);
    expect(failure.message).toContain('invalid_grant');
    expect(failure.cause).toBeUndefined();
    expect(tw.resourceRequests).toBe(0);
    expectNoSecret(failure);

    // As workflow history has it.
    const stored = defaultFailureConverter.errorToFailure(failure, defaultPayloadConverter);
    expect(stored.applicationFailureInfo).toMatchObject({
      type: 'TokenwardenNeedsReauth',
      nonRetryable: true,
    });
  });

  it('needs_reauth met while reporting a 401 fails the same way', async () => {
    const { withAccessToken } = helpers();
    const { env } = activityEnvironment();
    await env.run(() => withAccessToken(CONNECTION, () => 'warm'));
    tw.errors.push({
      status: 409,
      body: { error: 'needs_reauth', reason: 'refresh_in_doubt', message: 'x' },
    });
    const failure = await failureOf(
      env.run(() =>
        withAccessToken(CONNECTION, () => {
          throw new TokenRejectedError();
        }),
      ),
    );
    expect(failure.type).toBe(FailureTypes.NeedsReauth);
    expect(failure.details).toEqual([{ connectionId: CONNECTION, reason: 'refresh_in_doubt' }]);
  });

  it('refresh_unavailable: retryable TokenwardenRefreshUnavailable whose next retry waits for Retry-After', async () => {
    tw.errors.push({
      status: 503,
      body: { error: 'refresh_unavailable', message: 'provider down', retry_after: 7 },
      headers: { 'retry-after': '7' },
    });
    const { getAccessToken } = helpers();
    const failure = await failureOf(
      activityEnvironment().env.run(() => getAccessToken(CONNECTION)),
    );
    expect(failure.type).toBe(FailureTypes.RefreshUnavailable);
    expect(failure.nonRetryable).toBe(false);
    expect(failure.nextRetryDelay).toBe(7_000);
    expect(failure.details).toEqual([{ connectionId: CONNECTION, retryAfterMs: 7_000 }]);
    expectNoSecret(failure);
    const stored = defaultFailureConverter.errorToFailure(failure, defaultPayloadConverter);
    expect(Number(stored.applicationFailureInfo?.nextRetryDelay?.seconds)).toBe(7);
  });

  it.each([
    [404, 'not_found', FailureTypes.NotFound, true],
    [403, 'forbidden', FailureTypes.AccessDenied, true],
    [401, 'unauthorized', FailureTypes.AccessDenied, true],
    [400, 'invalid_request', FailureTypes.Error, true],
    [503, 'store_unavailable', FailureTypes.Unavailable, false],
    [500, 'internal_error', FailureTypes.Unavailable, false],
  ])('HTTP %i %s: %s, non-retryable %s', async (status, code, type, nonRetryable) => {
    tw.errors.push({ status, body: { error: code, message: 'm' } });
    const failure = await failureOf(
      activityEnvironment().env.run(() => helpers().getAccessToken(CONNECTION)),
    );
    expect(failure.type).toBe(type);
    expect(failure.nonRetryable).toBe(nonRetryable);
    expect(failure.details).toEqual([{ connectionId: CONNECTION, code }]);
    expectNoSecret(failure);
  });

  it('Tokenwarden unreachable: retryable TokenwardenUnavailable, no cause in history', async () => {
    const unreachable = new TokenwardenClient({
      baseUrl: API,
      apiKey: API_KEY,
      retry: { maxAttempts: 1 },
      fetch: () => Promise.reject(new TypeError(`fetch failed for ${API_KEY}`)),
    });
    const failure = await failureOf(
      activityEnvironment().env.run(() =>
        createActivityHelpers(unreachable).getAccessToken(CONNECTION),
      ),
    );
    expect(failure.type).toBe(FailureTypes.Unavailable);
    expect(failure.nonRetryable).toBe(false);
    expect(failure.details).toEqual([{ connectionId: CONNECTION, code: 'network_error' }]);
    expectNoSecret(failure);
  });
});

describe('heartbeats and cancellation', () => {
  it('heartbeats while waiting for a refresh, and stops once the token is there', async () => {
    let release!: () => void;
    tw.gate = new Promise((resolve) => (release = resolve));
    const { env, heartbeats } = activityEnvironment({ heartbeatDetails: { page: 4 } });
    env.on('heartbeat', () => {
      if (heartbeats.length === 3) release();
    });
    const { getAccessToken } = helpers({ heartbeatIntervalMs: 5 });
    const token = (await env.run(() => getAccessToken(CONNECTION))) as AccessToken;
    expect(token.version).toBe(1);
    const atSettle = heartbeats.length;
    expect(atSettle).toBeGreaterThanOrEqual(3);
    // The previous attempt's checkpoint is kept, not overwritten with nothing.
    expect(heartbeats.every((details) => JSON.stringify(details) === '{"page":4}')).toBe(true);

    // Several intervals later: not one more.
    for (let i = 0; i < 5; i++) await new Promise((resolve) => setTimeout(resolve, 5));
    expect(heartbeats.length).toBe(atSettle);
  });

  it('a cached token costs no heartbeat; heartbeats carry the details the activity names', async () => {
    const { env, heartbeats } = activityEnvironment();
    let progress = 0;
    const { getAccessToken } = helpers({
      heartbeatIntervalMs: 5,
      heartbeatDetails: () => progress,
    });
    await env.run(() => getAccessToken(CONNECTION)); // may heartbeat once while it is fetched
    const first = heartbeats.length;
    expect(first).toBeLessThanOrEqual(1);
    for (let i = 0; i < 10; i++) await env.run(() => getAccessToken(CONNECTION));
    expect(heartbeats.length).toBe(first);

    let release!: () => void;
    tw.gate = new Promise((resolve) => (release = resolve));
    progress = 17;
    env.on('heartbeat', () => release());
    await env.run(() => getAccessToken(CONNECTION, { minTtl: 7_200 }).catch(() => null));
    expect(heartbeats.slice(first)).toContain(17);
  });

  it('without a heartbeat timeout it does not heartbeat, as the Temporal SDK asks', async () => {
    let release!: () => void;
    tw.gate = new Promise((resolve) => (release = resolve));
    const env = new MockActivityEnvironment({ heartbeatTimeoutMs: undefined }, { logger });
    let heartbeats = 0;
    env.on('heartbeat', () => heartbeats++);
    const pending = env.run(() => helpers().getAccessToken(CONNECTION));
    for (let i = 0; i < 5; i++) await new Promise((resolve) => setTimeout(resolve, 5));
    release();
    await pending;
    expect(heartbeats).toBe(0);
  });

  it('the activity cancelled while waiting: CancelledFailure at once, no unhandled rejection', async () => {
    tw.gate = new Promise(() => {}); // Tokenwarden never answers
    const { env, heartbeats } = activityEnvironment();
    env.on('heartbeat', () => {
      if (heartbeats.length === 1) env.cancel();
    });
    const { getAccessToken } = helpers({ heartbeatIntervalMs: 5 });
    await expect(env.run(() => getAccessToken(CONNECTION))).rejects.toBeInstanceOf(
      CancelledFailure,
    );
  });
});

describe('cancellation of a request in flight', () => {
  it('fetch: the activity cancelled while the resource hangs aborts the request', async () => {
    const { fetch } = helpers();
    const { env } = activityEnvironment();
    await env.run(() => fetch(CONNECTION, RESOURCE)); // the token is cached
    tw.hangResource = true;
    const caller = new AbortController(); // the caller's own signal is kept too
    const pending = env.run(() => fetch(CONNECTION, RESOURCE, { signal: caller.signal }));
    while (tw.resourceRequests < 2) await new Promise((resolve) => setImmediate(resolve));
    env.cancel();
    await expect(pending).rejects.toBeInstanceOf(CancelledFailure);
    expect(tw.abortedResourceRequests).toBe(1);

    const second = activityEnvironment().env;
    const pending2 = second.run(() => fetch(CONNECTION, RESOURCE, { signal: caller.signal }));
    while (tw.resourceRequests < 3) await new Promise((resolve) => setImmediate(resolve));
    caller.abort();
    await expect(pending2).rejects.toThrow();
    expect(tw.abortedResourceRequests).toBe(2);
  });
});

describe('outside an activity', () => {
  it('works without heartbeats or cancellation, and still maps failures', async () => {
    const { withAccessToken, getAccessToken } = helpers({ heartbeatIntervalMs: 5 });
    tw.expireCurrentToken();
    const used: string[] = [];
    const result = await withAccessToken(CONNECTION, ({ accessToken }) => {
      used.push(accessToken);
      if (!tw.valid.has(accessToken)) throw new TokenRejectedError();
      return 'ok';
    });
    expect(result).toBe('ok');
    expect(used).toEqual(['at_v1_secret', 'at_v2_secret']);

    tw.errors.push({ status: 404, body: { error: 'not_found', message: 'm' } });
    const failure = await failureOf(getAccessToken('conn_other'));
    expect(failure.type).toBe(FailureTypes.NotFound);
  });

  it('refuses something that is not a client, and a bad heartbeat interval', async () => {
    expect(() => createActivityHelpers({} as never)).toThrow(/TokenwardenClient/);
    expect(() => helpers({ heartbeatIntervalMs: -1 })).toThrow(/heartbeatIntervalMs/);
    const { getAccessToken } = helpers();
    await expect(getAccessToken(CONNECTION, { heartbeatIntervalMs: 0 })).rejects.toThrow(
      /heartbeatIntervalMs/,
    );
    expect(tw.tokenRequests).toBe(0); // refused before asking Tokenwarden
  });
});

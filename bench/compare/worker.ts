// One "machine" of the comparison storm for the two approaches that are not Tokenwarden. It gets
// the client and the expired credential from the environment, waits at the barrier, fires
// `callers` concurrent token requests and reports, per distinct access token, how many callers got
// it. The tokens go to the parent only so that it can ask the provider whether they still work.
//   worker.ts <google|naive> <callers>
import { reportResult, waitForStart } from '@tokenwarden/testkit';
import { OAuth2Client } from 'google-auth-library';

/** What compare.ts hands every child as JSON in TW_COMPARE_FIXTURE (loopback test values). */
export interface CompareFixture {
  tokenUrl: string;
  clientId: string;
  clientSecret: string;
  refreshToken: string;
}

export interface CompareResult {
  /** Distinct access tokens this process's callers got, with how many callers got each. */
  tokens: { token: string; callers: number }[];
  /** One short code per failed caller (an OAuth error name or an exception name, never a body). */
  errors: string[];
}

type GetToken = () => Promise<string>;

/**
 * What a user of google-auth-library would write: one OAuth2Client per process, shared by every
 * caller in it. The client collapses concurrent refreshes of the same refresh token into one
 * request (its refreshTokenPromises map), but only within its own process.
 */
function googleAuthLibrary(fixture: CompareFixture): GetToken {
  const client = new OAuth2Client({
    clientId: fixture.clientId,
    clientSecret: fixture.clientSecret,
    // Plain http on loopback is accepted: the library does not insist on https here.
    endpoints: { oauth2TokenUrl: fixture.tokenUrl },
  });
  // expiry_date 1 (ms since the epoch) makes the stale access token look expired.
  client.setCredentials({
    refresh_token: fixture.refreshToken,
    access_token: 'stale',
    expiry_date: 1,
  });
  return async () => {
    const { token } = await client.getAccessToken();
    if (!token) throw new Error('no_token');
    return token;
  };
}

/** No coordination at all: every caller redeems the refresh token itself (client_secret_basic). */
function naive(fixture: CompareFixture): GetToken {
  // RFC 6749 §2.3.1: id and secret are form-urlencoded before they go into the Basic header.
  const basic = Buffer.from(
    `${encodeURIComponent(fixture.clientId)}:${encodeURIComponent(fixture.clientSecret)}`,
  ).toString('base64');
  return async () => {
    const res = await fetch(fixture.tokenUrl, {
      method: 'POST',
      headers: {
        Authorization: `Basic ${basic}`,
        'Content-Type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams({
        grant_type: 'refresh_token',
        refresh_token: fixture.refreshToken,
      }),
      signal: AbortSignal.timeout(30_000),
    });
    const body = (await res.json()) as { access_token?: string; error?: string };
    if (!res.ok || !body.access_token) throw new Error(body.error ?? `http_${res.status}`);
    return body.access_token;
  };
}

/** A short, token-free description of a failure, for the error count and debugging. */
function errorCode(reason: unknown): string {
  // gaxios (google-auth-library) puts the OAuth error body on error.response.data.
  const oauth = (reason as { response?: { data?: { error?: unknown } } }).response?.data?.error;
  if (typeof oauth === 'string') return oauth;
  if (reason instanceof Error)
    return /^[a-z_0-9]+$/i.test(reason.message) ? reason.message : reason.name;
  return 'unknown';
}

const [approach, callers = '125'] = process.argv.slice(2);
const fixture = JSON.parse(process.env.TW_COMPARE_FIXTURE ?? 'null') as CompareFixture | null;
if (!fixture) throw new Error('TW_COMPARE_FIXTURE is not set: compare.ts starts this worker');
if (approach !== 'google' && approach !== 'naive') throw new Error(`unknown approach ${approach}`);
const getToken = approach === 'google' ? googleAuthLibrary(fixture) : naive(fixture);

await waitForStart();
const outcomes = await Promise.allSettled(Array.from({ length: Number(callers) }, getToken));

const counts = new Map<string, number>();
const result: CompareResult = { tokens: [], errors: [] };
for (const outcome of outcomes) {
  if (outcome.status === 'rejected') result.errors.push(errorCode(outcome.reason));
  else counts.set(outcome.value, (counts.get(outcome.value) ?? 0) + 1);
}
result.tokens = [...counts].map(([token, n]) => ({ token, callers: n }));
await reportResult(result);

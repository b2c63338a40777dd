// One worker process of the cluster tests: a TokenwardenClient on one replica, released with its
// siblings by the harness, then `callers` concurrent calls. Reports token fingerprints (never a
// token), the HTTP statuses the callers saw and how many API requests this process made.
//   sdk-worker.ts <token|fetch> <baseUrl> <connectionId> <callers> [resourceUrl]
// The API key comes in TW_SDK_API_KEY.
import { TokenwardenClient } from '@tokenwarden/client';
import { reportResult, tokenFingerprint, waitForStart } from '@tokenwarden/testkit';

export interface SdkWorkerResult {
  fingerprints: string[];
  versions: number[];
  statuses: number[];
  errors: string[];
  /** API requests this process sent, by path suffix. */
  apiRequests: { token: number; rejected: number };
}

const [mode, baseUrl, connectionId, callers, resourceUrl] = process.argv.slice(2);
const apiRequests = { token: 0, rejected: 0 };
const tw = new TokenwardenClient({
  baseUrl: baseUrl!,
  apiKey: process.env.TW_SDK_API_KEY!,
  fetch: (input, init) => {
    const url = String(input instanceof Request ? input.url : input);
    if (url.endsWith('/token')) apiRequests.token++;
    if (url.endsWith('/token/rejected')) apiRequests.rejected++;
    return fetch(input, init);
  },
});

// In fetch mode every caller starts from the token this process already holds, as a long-running
// worker would: the one the resource server is about to refuse.
if (mode === 'fetch') await tw.getAccessToken(connectionId!);
await waitForStart();

const result: SdkWorkerResult = {
  fingerprints: [],
  versions: [],
  statuses: [],
  errors: [],
  apiRequests,
};
await Promise.all(
  Array.from({ length: Number(callers) }, async () => {
    try {
      if (mode === 'token') {
        const token = await tw.getAccessToken(connectionId!);
        result.fingerprints.push(tokenFingerprint(token.accessToken));
        result.versions.push(token.version);
      } else {
        const res = await tw.fetch(connectionId!, resourceUrl!);
        result.statuses.push(res.status);
        await res.body?.cancel();
      }
    } catch (error) {
      result.errors.push(String((error as { code?: string }).code ?? error));
    }
  }),
);
if (mode === 'fetch') {
  const token = await tw.getAccessToken(connectionId!);
  result.fingerprints.push(tokenFingerprint(token.accessToken));
  result.versions.push(token.version);
}
await reportResult(result);

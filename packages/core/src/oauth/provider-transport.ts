// How requests to a provider's token, revocation and introspection endpoints leave: undici's
// `request`, behind the `fetch` signature that oauth4webapi and the tests' fakes speak. Node's
// WHATWG `fetch` is the same undici underneath, plus a Request, a Response over a web stream and
// a signal chain per call: about a fifth of a scheduler instance's CPU per refresh
// (docs/benchmarks.md, "Proactive scheduler"). Requests share undici's global connection pool,
// as `fetch` did.
import { request } from 'undici';
import { MAX_RESPONSE_BYTES } from './token-response.ts';

/**
 * An answer is read no further than one byte past what its readers accept (`readLimited` with
 * `MAX_RESPONSE_BYTES`), which is how they tell that it is too large.
 */
const READ_AT_MOST = MAX_RESPONSE_BYTES + 1;

/**
 * `fetch` for provider endpoints. What differs from the global one, on purpose: no redirect is
 * followed (oauth4webapi asks for none anyway), no `accept-encoding` is sent so no body needs
 * decompressing, the WHATWG list of "bad ports" does not apply, and the body is read at once,
 * up to `READ_AT_MOST` (a provider's answers are small; the rest is not downloaded). Errors keep
 * `fetch`'s shape: a URL with user info is a `TypeError` before anything is sent; a network
 * failure is `TypeError('fetch failed')` with undici's error as its `cause`; an abort rejects
 * with the signal's reason.
 */
export async function providerFetch(
  input: string | URL | Request,
  init: RequestInit = {},
): Promise<Response> {
  const url = new URL(input instanceof Request ? input.url : input);
  if (url.username !== '' || url.password !== '') {
    throw new TypeError('A request URL must not include credentials');
  }
  const headers = Object.fromEntries(new Headers(init.headers));
  let body: string | Uint8Array | undefined;
  if (init.body instanceof URLSearchParams) {
    body = init.body.toString();
    headers['content-type'] ??= 'application/x-www-form-urlencoded;charset=UTF-8';
  } else if (typeof init.body === 'string' || init.body instanceof Uint8Array) {
    body = init.body;
  } else if (init.body != null) {
    throw new TypeError('A provider request body is a string, a form or bytes');
  }
  let answer: Awaited<ReturnType<typeof request>>;
  try {
    answer = await request(url, {
      method: (init.method ?? 'GET') as 'GET',
      headers,
      body,
      signal: init.signal ?? undefined,
    });
  } catch (error) {
    if (init.signal?.aborted && error === init.signal.reason) throw error;
    throw new TypeError('fetch failed', { cause: error });
  }
  const responseHeaders = new Headers();
  for (const [name, value] of Object.entries(answer.headers)) {
    for (const one of Array.isArray(value) ? value : [value ?? '']) {
      responseHeaders.append(name, one);
    }
  }
  const empty = [204, 205, 304].includes(answer.statusCode);
  const bytes = await readAtMost(answer.body, empty ? 0 : READ_AT_MOST);
  return new Response(empty ? null : new Uint8Array(bytes), {
    status: answer.statusCode,
    headers: responseHeaders,
  });
}

/** The body's first `limit` bytes; the rest is not read (the connection is dropped). */
async function readAtMost(
  body: AsyncIterable<Buffer> & { destroy(): void },
  limit: number,
): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    chunks.push(chunk);
    size += chunk.byteLength;
    if (size >= limit) break; // leaving the loop destroys the stream
  }
  return Buffer.concat(chunks, Math.min(size, limit));
}

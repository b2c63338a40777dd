// What `client.fetch` needs to send one request twice: the caller's headers plus our bearer, and
// whether the body can be sent again after the first attempt consumed it.

/**
 * True when the request can be sent a second time as it is. A ReadableStream or async iterable
 * body is consumed by the first attempt, and so is the body of a `Request` passed as `input`
 * (unless `init.body` replaces it); fetch serialises the other body types afresh each time.
 */
export function canReplay(input: string | URL | Request, init: RequestInit | undefined): boolean {
  const body: unknown =
    init?.body !== undefined ? init.body : input instanceof Request ? input.body : null;
  return (
    body === null ||
    body === undefined ||
    typeof body === 'string' ||
    body instanceof URLSearchParams ||
    body instanceof Blob ||
    body instanceof FormData ||
    body instanceof ArrayBuffer ||
    ArrayBuffer.isView(body)
  );
}

/** The caller's init with `Authorization: Bearer <token>` set, everything else kept. */
export function withBearer(
  input: string | URL | Request,
  init: RequestInit | undefined,
  accessToken: string,
): RequestInit {
  // fetch(request, init) takes init.headers instead of the request's, so start from whichever
  // fetch would have used.
  const headers = new Headers(
    init?.headers !== undefined ? init.headers : input instanceof Request ? input.headers : {},
  );
  headers.set('authorization', `Bearer ${accessToken}`);
  return { ...init, headers };
}

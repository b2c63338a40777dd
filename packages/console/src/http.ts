/// <reference lib="dom" />
// The console's one way to the server: the session cookie and the CSRF token on every call. The token lives in this module only (never in storage); the cookie is out of reach.

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

let csrfToken: string | undefined;
let onSessionEnded: (message: string) => void = () => undefined;

export const session = {
  get signedIn(): boolean {
    return csrfToken !== undefined;
  },
  start(token: string): void {
    csrfToken = token;
  },
  end(): void {
    csrfToken = undefined;
  },
  /** What to do when the server says the session is gone (a 401). */
  onEnded(callback: (message: string) => void): void {
    onSessionEnded = callback;
  },
};

/** The admin API as the console reaches it: /v1/... behind the session (see console-admin.ts). */
export const ADMIN_API = '/v1/console/api';

export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  // On every call once signed in: the server insists on it for writes only, where it matters.
  if (csrfToken !== undefined) headers['x-csrf-token'] = csrfToken;
  const response = await fetch(path, {
    method,
    headers,
    credentials: 'same-origin',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 401 && path !== '/v1/console/session') {
    onSessionEnded('Your session ended: sign in again.');
  }
  if (!response.ok) {
    const problem = (await response.json().catch(() => ({}))) as { message?: string };
    throw new ApiError(response.status, problem.message ?? `HTTP ${response.status}`);
  }
  return (response.status === 204 ? undefined : await response.json()) as T;
}

// A scripted stand-in for the Tokenwarden API and a protected resource server, plugged into a real
// TokenwardenClient through its `fetch` option: the activity tests exercise the real SDK (cache,
// single-flight, 401 reporting, typed errors) without sockets.
import type { FetchLike } from '@tokenwarden/client';

export const API = 'http://tokenwarden.test';
export const RESOURCE = 'http://resource.test/items';
export const API_KEY = 'tw_test_api_key_never_in_failures';

export interface ScriptedAnswer {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

export class ScriptedTokenwarden {
  version = 1;
  /** Access tokens the resource server accepts. */
  readonly valid = new Set<string>(['at_v1_secret']);
  tokenRequests = 0;
  rejectedReports = 0;
  /** Refreshes: rejections of the current version (what a real server turns into a redemption). */
  refreshes = 0;
  resourceRequests = 0;
  resourceRejections = 0;
  /** Answers the next token requests instead of a token, in order. */
  readonly errors: ScriptedAnswer[] = [];
  /** While set, token requests wait for it. */
  gate: Promise<void> | undefined;
  /** While true, resource requests never answer; they end only when their signal aborts. */
  hangResource = false;
  abortedResourceRequests = 0;

  get token(): string {
    return `at_v${this.version}_secret`;
  }

  /** The provider says the current access token is no longer valid (it expired early). */
  expireCurrentToken(): void {
    this.valid.delete(this.token);
  }

  readonly fetch: FetchLike = async (input, init) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    const headers = new Headers(init?.headers ?? (input instanceof Request ? input.headers : {}));
    if (url.origin === new URL(RESOURCE).origin) {
      this.resourceRequests++;
      if (this.hangResource) {
        const signal = init?.signal;
        await new Promise((_, reject) =>
          signal?.addEventListener('abort', () => {
            this.abortedResourceRequests++;
            reject(signal.reason as Error);
          }),
        );
      }
      const bearer = /^Bearer (.+)$/.exec(headers.get('authorization') ?? '')?.[1];
      if (bearer !== undefined && this.valid.has(bearer)) return json(200, { ok: true });
      this.resourceRejections++;
      return json(401, { error: 'invalid_token' });
    }
    if (headers.get('authorization') !== `Bearer ${API_KEY}`) {
      return json(401, { error: 'unauthorized', message: 'bad API key' });
    }
    const rejected = url.pathname.endsWith('/token/rejected');
    if (rejected) {
      this.rejectedReports++;
      const { version } = JSON.parse(String(init?.body)) as { version: number };
      if (version === this.version) {
        this.refreshes++;
        this.version++;
        this.valid.add(this.token);
      }
    } else {
      this.tokenRequests++;
    }
    if (this.gate) await this.gate;
    const error = this.errors.shift();
    if (error) return json(error.status, error.body, error.headers);
    return json(200, {
      access_token: this.token,
      token_type: 'Bearer',
      expires_at: new Date(Date.now() + 3_600_000).toISOString(),
      version: this.version,
    });
  };
}

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { 'content-type': 'application/json', ...headers },
  });
}

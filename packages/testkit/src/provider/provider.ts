// A loopback OAuth 2.0 token endpoint that reproduces the refresh-token behaviour of real
// providers (rotation, grace windows, reuse detection) and the failures listed in
// the design notes (provider-quirks.md), so the refresh protocol can be tested against them.
// Over 400 lines on purpose: it is the one place a test reads to know what the provider does on
// each endpoint; its grants, state, hostile answers and authorization codes are in their own files.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { AuthorizationCodes } from './authorize.ts';
import { grant } from './grants.ts';
import { isHostile, sendHostile } from './hostile.ts';
import {
  authenticateClient,
  oauthError,
  readBody,
  requestParams,
  send,
  sendRaw,
  type Answer,
} from './http.ts';
import { PERSONALITIES } from './personalities.ts';
import { shaped } from './quirks.ts';
import { ProviderState } from './state.ts';
import {
  DEFAULT_OPTIONS,
  validateFailure,
  validateGrantOptions,
  validateOptionsPatch,
  type GrantOptions,
  type InjectedFailure,
  type IssuedGrant,
  type ProviderStats,
  type ResolvedProviderOptions,
  type TestProviderOptions,
} from './types.ts';

export interface StartOptions extends TestProviderOptions {
  /** Default 0: an ephemeral port. */
  port?: number;
  /** Default '127.0.0.1'. */
  host?: string;
}

/** A body that claims to be JSON and is not (the answer was cut short, or came from a proxy). */
const MALFORMED_JSON = '{"access_token": "at_';

/**
 * What an injected failure answers instead of processing the grant: an HTTP answer, 'hang'
 * (never answer), 'malformed', or undefined when the grant is processed (redeemed) first.
 */
function preempt(failure: InjectedFailure): Answer | 'hang' | 'malformed' | undefined {
  switch (failure.kind) {
    case 'hang':
      return failure.afterRedeem ? undefined : 'hang';
    case 'malformed_json':
      return failure.afterRedeem ? undefined : 'malformed';
    case 'server_error':
      return oauthError(failure.status ?? 500, 'server_error');
    case 'rate_limited':
      return {
        ...oauthError(429, 'slow_down', 'Too many token requests.'),
        headers: { 'Retry-After': String(failure.retryAfterSeconds) },
      };
    case 'error_200':
      // GitHub and Slack say "no" with HTTP 200; clients that only check the status are fooled.
      return failure.style === 'slack'
        ? { status: 200, body: { ok: false, error: failure.error ?? 'invalid_refresh_token' } }
        : { status: 200, body: { error: failure.error ?? 'invalid_grant' } };
    case 'invalid_grant':
      return oauthError(400, 'invalid_grant', 'Token has been expired or revoked.');
    default:
      return undefined;
  }
}

export class TestProvider {
  readonly #server: Server;
  #url = '';
  #options: ResolvedProviderOptions;
  #state = new ProviderState();
  #codes = new AuthorizationCodes();
  /** Refresh tokens whose redemption is under way (refuseConcurrentRefresh). */
  readonly #inFlight = new Set<string>();
  #failures: { failure: InjectedFailure; remaining: number }[] = [];
  readonly #timers = new Set<NodeJS.Timeout>();

  private constructor(server: Server, options: ResolvedProviderOptions) {
    this.#server = server;
    this.#options = options;
  }

  static async start(options: StartOptions = {}): Promise<TestProvider> {
    const { port = 0, host = '127.0.0.1', ...rest } = options;
    const resolved = withPatch(DEFAULT_OPTIONS, validateOptionsPatch(rest));
    const server = createServer();
    const provider = new TestProvider(server, resolved);
    server.on('request', (req: IncomingMessage, res: ServerResponse) => provider.#handle(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    const { port: bound } = server.address() as AddressInfo;
    const urlHost = host.includes(':') ? `[${host}]` : host;
    provider.#url = `http://${urlHost}:${bound}`;
    return provider;
  }

  /** Base URL, e.g. http://127.0.0.1:41234. */
  get url(): string {
    return this.#url;
  }

  get tokenUrl(): string {
    return `${this.#url}/token`;
  }

  get clientId(): string {
    return this.#options.clientId;
  }

  get clientSecret(): string {
    return this.#options.clientSecret;
  }

  /** Changes options; a `personality` in the patch applies its option set first. */
  configure(patch: Partial<TestProviderOptions>): void {
    this.#options = withPatch(this.#options, validateOptionsPatch(patch));
  }

  /** GET /authorize approves at once; this is its URL. */
  get authorizeUrl(): string {
    return `${this.#url}/authorize`;
  }

  get revocationUrl(): string {
    return `${this.#url}/revoke`;
  }

  get introspectionUrl(): string {
    return `${this.#url}/introspect`;
  }

  issueGrant(opts: GrantOptions = {}): IssuedGrant {
    return this.#state.issueGrant(this.#options, validateGrantOptions(opts), Date.now());
  }

  /** Revokes a token as POST /revoke would (RFC 7009): a refresh token takes its family. */
  revoke(token: string): void {
    this.#state.revoke(token);
  }

  injectFailures(...failures: InjectedFailure[]): void {
    for (const failure of failures.map(validateFailure)) {
      this.#failures.push({ failure, remaining: failure.times ?? 1 });
    }
  }

  /** Ends an injected outage: drops the failures still queued, keeps tokens and stats. */
  clearFailures(): void {
    this.#failures = [];
  }

  stats(): ProviderStats {
    const { stats } = this.#state;
    return { ...stats, redemptionsByToken: { ...stats.redemptionsByToken } };
  }

  reset(): void {
    this.#state = new ProviderState();
    this.#codes = new AuthorizationCodes();
    this.#failures = [];
  }

  isAccessTokenValid(token: string): boolean {
    return this.#state.isAccessTokenValid(token, this.#options, Date.now());
  }

  /**
   * Every access token issued so far stops being accepted by /resource, as if it had expired
   * early (revoked by the user, a provider-side rotation): what a stale cached token meets.
   * Refresh tokens stay valid. Returns how many had not expired yet.
   */
  expireAccessTokens(): number {
    return this.#state.expireAccessTokens(Date.now());
  }

  async close(): Promise<void> {
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    // Destroys hanging requests and idle keep-alive sockets, which close() alone would wait for.
    this.#server.closeAllConnections();
    await closed;
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    this.#route(req, res).catch((error: unknown) => {
      const message = error instanceof Error ? error.message : 'internal error';
      send(res, oauthError(500, 'server_error', `test provider: ${message}`));
    });
  }

  async #route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (path === '/token') return this.#token(req, res);
    if (path === '/authorize') return this.#authorize(req, res);
    if (path === '/.well-known/openid-configuration') return send(res, this.#metadata());
    if (path === '/revoke' || path === '/introspect') return this.#tokenInfo(path, req, res);
    if (path === '/resource') return this.#resource(req, res);
    if (path.startsWith('/__admin/')) return this.#admin(path, req, res);
    send(res, { status: 404, body: { error: 'not_found' } });
  }

  async #token(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== 'POST') {
      return send(res, { ...oauthError(405, 'invalid_request'), headers: { Allow: 'POST' } });
    }
    this.#state.stats.tokenRequests++;
    // Taken on arrival, before any await, so concurrent requests meet failures in arrival order.
    const failure = this.#takeFailure();
    const body = await readBody(req);
    if (body === null) return send(res, oauthError(413, 'invalid_request', 'body too large'));
    const form = requestParams(req.headers['content-type'], body, this.#options.requestFormat);
    // Salesforce: a refresh token already being redeemed is refused, not queued.
    const redeeming =
      form?.get('grant_type') === 'refresh_token' ? form.get('refresh_token') : null;
    const concurrent =
      redeeming !== null && this.#options.refuseConcurrentRefresh && this.#inFlight.has(redeeming);
    if (redeeming !== null && !concurrent) this.#inFlight.add(redeeming);
    try {
      if (this.#options.latencyMs > 0) await this.#sleep(this.#options.latencyMs);
      this.#answerToken(req, res, form, failure, concurrent);
    } finally {
      if (redeeming !== null && !concurrent) this.#inFlight.delete(redeeming);
    }
  }

  #answerToken(
    req: IncomingMessage,
    res: ServerResponse,
    form: URLSearchParams | null,
    failure: InjectedFailure | undefined,
    concurrent: boolean,
  ): void {
    if (isHostile(failure)) return sendHostile(res, failure, (timer) => this.#track(timer));
    const early = failure && preempt(failure);
    if (early === 'hang') return; // never answer: the client aborts, or close() ends it
    if (early === 'malformed') return sendRaw(res, 200, MALFORMED_JSON);
    if (early !== undefined) {
      // Counted with genuine refusals: to the client an HTTP 200 error is an invalid_grant too.
      if (early.status === 200 || (early.body as { error?: string }).error === 'invalid_grant') {
        this.#state.stats.invalidGrants++;
      }
      return send(res, shaped(this.#options, early, req.headers.accept));
    }
    if (concurrent) {
      // Wording as reported for Salesforce (segmentio/action-destinations#2300); the exact
      // error code it comes with is not documented.
      return send(
        res,
        oauthError(400, 'invalid_grant', 'token request is already being processed'),
      );
    }
    const ctx = { options: this.#options, state: this.#state, codes: this.#codes, now: Date.now() };
    const answer = grant(ctx, req, form, failure?.kind === 'no_refresh_token');
    // "The provider processed it but the answer got lost": the redemption above stands.
    if (failure?.kind === 'hang') return;
    if (failure?.kind === 'malformed_json') return sendRaw(res, 200, MALFORMED_JSON);
    if (answer.status === 200) {
      const ok = answer.body as Record<string, unknown>;
      if (failure?.kind === 'missing_expires_in') delete ok.expires_in;
      if (failure?.kind === 'string_expires_in') ok.expires_in = String(ok.expires_in);
      if (failure?.kind === 'invalid_expires_in') ok.expires_in = failure.value;
    }
    send(res, answer);
  }

  #authorize(req: IncomingMessage, res: ServerResponse): void {
    if (req.method !== 'GET') {
      return send(res, { ...oauthError(405, 'invalid_request'), headers: { Allow: 'GET' } });
    }
    const query = new URL(req.url ?? '/', 'http://localhost').searchParams;
    const answer = this.#codes.authorize(query, this.#options, this.#url, Date.now());
    if (answer.status === 302) this.#state.stats.authorizationCodes++;
    if (answer.status === 302) {
      res.writeHead(302, { ...answer.headers, 'Cache-Control': 'no-store' });
      res.end();
      return;
    }
    send(res, answer);
  }

  /** OpenID Connect Discovery 1.0 §3 / RFC 8414 §2 metadata, so discovery can be tested. */
  #metadata(): Answer {
    return {
      status: 200,
      body: {
        issuer: this.#url,
        authorization_endpoint: this.authorizeUrl,
        token_endpoint: this.tokenUrl,
        revocation_endpoint: this.revocationUrl,
        introspection_endpoint: this.introspectionUrl,
        response_types_supported: ['code'],
        grant_types_supported: ['authorization_code', 'refresh_token', 'client_credentials'],
        code_challenge_methods_supported: ['S256'],
        token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
        authorization_response_iss_parameter_supported: true,
      },
    };
  }

  /** POST /revoke (RFC 7009) and POST /introspect (RFC 7662), both with client authentication. */
  async #tokenInfo(path: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== 'POST') {
      return send(res, { ...oauthError(405, 'invalid_request'), headers: { Allow: 'POST' } });
    }
    const body = await readBody(req);
    if (body === null) return send(res, oauthError(413, 'invalid_request', 'body too large'));
    const form = requestParams(req.headers['content-type'], body, 'any');
    if (form === null) return send(res, oauthError(400, 'invalid_request'));
    const refused = authenticateClient(req.headers.authorization, form, this.#options);
    if (refused) return send(res, refused);
    const token = form.get('token');
    if (!token) return send(res, oauthError(400, 'invalid_request', 'missing token'));
    if (path === '/revoke') {
      this.#state.stats.revocations++;
      this.#state.revoke(token);
      return sendRaw(res, 200, '', { 'Content-Type': 'text/plain', 'Content-Length': 0 });
    }
    this.#state.stats.introspections++;
    send(res, { status: 200, body: this.#state.introspect(token, this.#options, Date.now()) });
  }

  #resource(req: IncomingMessage, res: ServerResponse): void {
    this.#state.stats.resourceRequests++;
    const bearer = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '')?.[1];
    if (bearer !== undefined && this.isAccessTokenValid(bearer)) {
      return send(res, { status: 200, body: { ok: true } });
    }
    this.#state.stats.resourceRejections++;
    send(res, {
      status: 401,
      body: { error: 'invalid_token' },
      headers: { 'WWW-Authenticate': 'Bearer error="invalid_token"' },
    });
  }

  async #admin(path: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const action = path.slice('/__admin'.length);
    const actions = [
      '/configure',
      '/grant',
      '/failures',
      '/reset',
      '/stats',
      '/expire-access-tokens',
    ];
    if (!actions.includes(action)) {
      return send(res, { status: 404, body: { error: 'not_found' } });
    }
    const method = action === '/stats' ? 'GET' : 'POST';
    if (req.method !== method) {
      return send(res, { ...oauthError(405, 'invalid_request'), headers: { Allow: method } });
    }
    const text = await readBody(req);
    if (text === null) return send(res, oauthError(413, 'invalid_request', 'body too large'));
    try {
      const input: unknown = text.trim() === '' ? undefined : JSON.parse(text);
      send(res, { status: 200, body: this.#adminAction(action, input) });
    } catch (error) {
      const message = error instanceof Error ? error.message : 'bad request';
      send(res, oauthError(400, 'invalid_request', message));
    }
  }

  /** The public methods validate their input, so untyped JSON can be passed straight through. */
  #adminAction(action: string, input: unknown): unknown {
    switch (action) {
      case '/configure':
        this.configure((input ?? {}) as Partial<TestProviderOptions>);
        return { ok: true };
      case '/grant':
        return this.issueGrant((input ?? {}) as GrantOptions);
      case '/failures':
        if (!Array.isArray(input)) throw new TypeError('expected a JSON array of failures');
        this.injectFailures(...(input as InjectedFailure[]));
        return { ok: true, queued: input.length };
      case '/reset':
        this.reset();
        return { ok: true };
      case '/expire-access-tokens':
        return { ok: true, expired: this.expireAccessTokens() };
      default:
        return this.stats();
    }
  }

  #takeFailure(): InjectedFailure | undefined {
    const head = this.#failures[0];
    if (!head) return undefined;
    if (--head.remaining === 0) this.#failures.shift();
    return head.failure;
  }

  /** Registers a timer close() must clear; returns the function that forgets it. */
  #track(timer: NodeJS.Timeout): () => void {
    this.#timers.add(timer);
    return () => this.#timers.delete(timer);
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#timers.delete(timer);
        resolve();
      }, ms);
      this.#timers.add(timer);
    });
  }
}

/** Applies a patch; a personality in it brings its option set, which the patch overrides. */
function withPatch(
  base: ResolvedProviderOptions,
  patch: Partial<TestProviderOptions>,
): ResolvedProviderOptions {
  const personality = patch.personality ? PERSONALITIES[patch.personality] : {};
  return { ...base, ...personality, ...patch };
}

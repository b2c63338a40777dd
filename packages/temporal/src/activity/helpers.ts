import { Context } from '@temporalio/activity';
import { TokenwardenError, type AccessToken, type TokenwardenClient } from '@tokenwarden/client';
import { toApplicationFailure } from './failures.ts';

/** What the helpers need of a `TokenwardenClient`; a test may pass its own. */
export type TokenSource = Pick<TokenwardenClient, 'getAccessToken' | 'reportRejected' | 'fetch'> &
  Partial<Pick<TokenwardenClient, 'proxy'>>;

export interface ActivityHelpersOptions {
  /** A token handed to `fn` stays valid at least this long. Default: the client's default. */
  minTtl?: number;
  /**
   * How often to heartbeat while waiting for Tokenwarden. Default: a third of the activity's
   * heartbeat timeout. Without a heartbeat timeout (and without this option) the helpers do not
   * heartbeat, as the Temporal SDK asks; local activities never heartbeat.
   */
  heartbeatIntervalMs?: number;
  /**
   * The details sent with those heartbeats. Heartbeat details are the activity's checkpoint, and
   * each heartbeat replaces the last one's: an activity that checkpoints its progress should
   * return its current progress here. Default: the details of the previous attempt's last
   * heartbeat (`activityInfo().heartbeatDetails`), which is right until the activity heartbeats
   * for itself. Never put a token here: heartbeat details are stored by the Temporal server.
   */
  heartbeatDetails?: () => unknown;
  /**
   * Whether an error thrown by `fn` means the resource server refused the access token (HTTP 401).
   * Default: a `TokenRejectedError`, or an error whose `status`, `statusCode`, `response.status`
   * or `response.statusCode` is 401.
   */
  isRejected?: (error: unknown) => boolean;
  /**
   * `fetch` only: send the request through Tokenwarden's proxy (`TokenwardenClient.proxy`), so
   * the worker never holds the token; the server adds it and handles a 401. The URL must lie
   * under one of the provider's `api_base_urls`, and the client needs the `proxy` grant action
   * instead of `token.read`. Default false.
   */
  proxy?: boolean;
}

/**
 * Throw it from a `withAccessToken` callback when the resource server refused the token, if its
 * client library does not throw an error with a 401 status of its own.
 */
export class TokenRejectedError extends Error {
  constructor(message = 'The resource server refused the access token (HTTP 401).') {
    super(message);
    this.name = 'TokenRejectedError';
  }
}

export interface ActivityHelpers {
  /**
   * Runs `fn` with a valid access token for the connection. If `fn` reports that the token was
   * refused (see `isRejected`), the refusal is reported to Tokenwarden, which refreshes the token
   * once however many workers report it, and `fn` runs once more with the fresh token; a second
   * refusal is thrown as `fn` threw it.
   *
   * While it waits for Tokenwarden it heartbeats, and it gives up at once if the activity is
   * cancelled. Tokenwarden errors become ApplicationFailures (see `FailureTypes`); errors from
   * `fn` pass through unchanged.
   */
  withAccessToken<T>(
    connectionId: string,
    fn: (token: AccessToken) => Promise<T> | T,
    options?: ActivityHelpersOptions,
  ): Promise<T>;
  /**
   * `fetch` with the connection's bearer token, through `TokenwardenClient.fetch`: a 401 is
   * reported and the request sent once more with the fresh token; a second 401 is returned as it
   * is. The activity's cancellation aborts the request (as does `init.signal`, if given). It
   * heartbeats until the response headers arrive (the request included), then stops. With
   * `{ proxy: true }` the request goes through Tokenwarden's proxy and no token enters the worker.
   */
  fetch(
    connectionId: string,
    input: string | URL | Request,
    init?: RequestInit,
    options?: ActivityHelpersOptions,
  ): Promise<Response>;
  /** A valid access token, with heartbeats, cancellation and failure mapping as above. */
  getAccessToken(connectionId: string, options?: ActivityHelpersOptions): Promise<AccessToken>;
}

/**
 * Activity helpers bound to one `TokenwardenClient`. Create one client and one set of helpers per
 * worker process, and hand them to your activities: the client's cache and single-flight are
 * shared by every activity the worker runs.
 *
 * @example
 * ```ts
 * const tokenwarden = new TokenwardenClient({ baseUrl, apiKey });
 * const { fetch, withAccessToken } = createActivityHelpers(tokenwarden, { minTtl: 60 });
 *
 * export const activities = {
 *   async listChannels(connectionId: string) {
 *     const res = await fetch(connectionId, 'https://slack.com/api/conversations.list');
 *     return res.json();
 *   },
 *   async sendMail(connectionId: string, mail: Mail) {
 *     return withAccessToken(connectionId, (token) => gmail.send(token.accessToken, mail));
 *   },
 * };
 * ```
 */
export function createActivityHelpers(
  client: TokenSource,
  defaults: ActivityHelpersOptions = {},
): ActivityHelpers {
  if (
    client === null ||
    typeof client !== 'object' ||
    typeof client.getAccessToken !== 'function' ||
    typeof client.reportRejected !== 'function'
  ) {
    throw new TypeError('createActivityHelpers needs a TokenwardenClient');
  }
  const settings = (options?: ActivityHelpersOptions): ActivityHelpersOptions => {
    const merged = { ...defaults, ...options };
    const interval = merged.heartbeatIntervalMs;
    if (interval !== undefined && !(interval > 0 && Number.isFinite(interval))) {
      throw new RangeError('heartbeatIntervalMs must be a positive number');
    }
    return merged;
  };
  settings(); // checks the defaults now rather than in the first activity

  const getAccessToken = async (
    connectionId: string,
    options?: ActivityHelpersOptions,
  ): Promise<AccessToken> => {
    const opts = settings(options);
    return waitFor(
      connectionId,
      () =>
        client.getAccessToken(
          connectionId,
          opts.minTtl === undefined ? undefined : { minTtl: opts.minTtl },
        ),
      opts,
    );
  };

  return {
    getAccessToken,

    async withAccessToken<T>(
      connectionId: string,
      fn: (token: AccessToken) => Promise<T> | T,
      options?: ActivityHelpersOptions,
    ): Promise<T> {
      const opts = settings(options);
      const isRejected = opts.isRejected ?? isUnauthorizedError;
      const token = await getAccessToken(connectionId, opts);
      try {
        return await fn(token);
      } catch (error) {
        if (!isRejected(error)) throw error;
      }
      const fresh = await waitFor(
        connectionId,
        () => client.reportRejected(connectionId, token.version),
        opts,
      );
      return await fn(fresh);
    },

    async fetch(
      connectionId: string,
      input: string | URL | Request,
      init?: RequestInit,
      options?: ActivityHelpersOptions,
    ): Promise<Response> {
      // The caller's signal (in init, or the Request's own) and the activity's cancellation.
      const signals = [
        init?.signal ?? (input instanceof Request ? input.signal : undefined),
        currentContext()?.cancellationSignal,
      ].filter((signal): signal is AbortSignal => signal != null);
      const request =
        signals.length === 0
          ? init
          : { ...init, signal: signals.length === 1 ? signals[0] : AbortSignal.any(signals) };
      const opts = settings(options);
      if (!opts.proxy) {
        return waitFor(connectionId, () => client.fetch(connectionId, input, request), opts);
      }
      if (input instanceof Request || typeof client.proxy !== 'function') {
        throw new TypeError(
          'proxy mode needs a TokenwardenClient and a URL (a string or URL), not a Request',
        );
      }
      const proxy = client.proxy.bind(client);
      return waitFor(connectionId, () => proxy(connectionId, input, request), opts);
    },
  };
}

/**
 * Awaits a Tokenwarden call the way an activity should: heartbeating while it is pending,
 * giving up when the activity is cancelled, and turning Tokenwarden errors into
 * ApplicationFailures.
 */
async function waitFor<T>(
  connectionId: string,
  call: () => Promise<T>,
  options: ActivityHelpersOptions,
): Promise<T> {
  const context = currentContext();
  let pending: Promise<T>;
  try {
    pending = call();
  } catch (error) {
    pending = Promise.reject(error as Error);
  }
  const stop = context === undefined ? undefined : startHeartbeats(context, pending, options);
  try {
    if (context === undefined) return await pending;
    // Cancelled: stop waiting. The call itself finishes in the background (its answer is cached
    // by the client), so its outcome must not become an unhandled rejection.
    pending.catch(() => undefined);
    return await Promise.race([pending, context.cancelled]);
  } catch (error) {
    const failure = toApplicationFailure(error, connectionId);
    if (failure !== undefined) throw failure;
    throw error;
  } finally {
    stop?.();
  }
}

/** Heartbeats once the call turns out not to be settled at once, then every interval. */
function startHeartbeats(
  context: Context,
  pending: Promise<unknown>,
  options: ActivityHelpersOptions,
): (() => void) | undefined {
  const { info } = context;
  if (info.isLocal) return undefined;
  const intervalMs = options.heartbeatIntervalMs ?? defaultInterval(info.heartbeatTimeoutMs);
  if (intervalMs === undefined) return undefined;
  const details = options.heartbeatDetails ?? (() => info.heartbeatDetails as unknown);
  let settled = false;
  let interval: NodeJS.Timeout | undefined;
  const beat = (): void => {
    if (!settled) context.heartbeat(details());
  };
  // A cache hit settles before a macrotask runs: no heartbeat for it.
  const first = setImmediate(() => {
    if (settled) return;
    beat();
    interval = setInterval(beat, intervalMs);
  });
  const stop = (): void => {
    settled = true;
    clearImmediate(first);
    if (interval !== undefined) clearInterval(interval);
  };
  pending.then(stop, stop);
  return stop;
}

function defaultInterval(heartbeatTimeoutMs: number | undefined): number | undefined {
  if (heartbeatTimeoutMs === undefined || !(heartbeatTimeoutMs > 0)) return undefined;
  return Math.max(50, Math.floor(heartbeatTimeoutMs / 3));
}

function currentContext(): Context | undefined {
  try {
    return Context.current();
  } catch {
    return undefined; // Not in an activity: no heartbeats, no cancellation, failures still mapped.
  }
}

/** The default `isRejected`. */
export function isUnauthorizedError(error: unknown): boolean {
  if (error instanceof TokenRejectedError) return true;
  // The Tokenwarden API's own 401 (a bad API key) is not the resource server refusing a token.
  if (error instanceof TokenwardenError || typeof error !== 'object' || error === null)
    return false;
  const e = error as Record<string, unknown>;
  const response = (
    typeof e.response === 'object' && e.response !== null ? e.response : {}
  ) as Record<string, unknown>;
  return [e.status, e.statusCode, response.status, response.statusCode].some(
    (status) => status === 401,
  );
}

// A small fetch wrapper for the commands that talk to a running server. Every failure becomes a
// CliError with one line: the API's `{"error", "message"}` as `forbidden: ...`, a network
// failure as a sentence naming the URL.
import { adminKeyFromEnv } from './admin-key-file.ts';
import { switches, valued, type Args, type OptionSpec } from './args.ts';
import { CliError, UsageError } from './errors.ts';
import { redactUrl } from './redact-url.ts';

export const DEFAULT_URL = 'http://127.0.0.1:8080';

/** The options every API-talking command accepts. */
export const API_OPTIONS: OptionSpec = {
  ...valued('url', 'key'),
  ...switches('json'),
};

/**
 * Whose key a command sends when both are exported, as following the README in one shell leaves
 * them: commands that need admin rights (or that the admin may always run) send the admin key,
 * the service-client commands (`token`) the API key; each falls back to the other.
 */
export type KeyPreference = 'admin' | 'service';

const KEY_ENVS: Record<KeyPreference, readonly string[]> = {
  admin: ['TOKENWARDEN_ADMIN_KEY', 'TOKENWARDEN_API_KEY'],
  service: ['TOKENWARDEN_API_KEY', 'TOKENWARDEN_ADMIN_KEY'],
};

function apiHelp(prefer: KeyPreference): string {
  const [first, then] = KEY_ENVS[prefer];
  return `Server options:
  --url <url>   Tokenwarden server (env TOKENWARDEN_URL, default ${DEFAULT_URL})
  --key <key>   API key (env ${first}, then ${then}; the admin key may also be
                read from the file TOKENWARDEN_ADMIN_KEY_FILE names); prefer the
                environment: a key on the command line is visible to other local users
  --json        print JSON instead of a table`;
}

/** The server options of a command that sends the admin key first. */
export const API_HELP = apiHelp('admin');
/** The server options of a service-client command, which sends the API key first. */
export const SERVICE_API_HELP = apiHelp('service');

const TIMEOUT_MS = 60_000;

export class ApiClient {
  readonly #base: URL;
  readonly #key: string;

  constructor(url: string, key: string) {
    let base: URL;
    try {
      base = new URL(url);
    } catch {
      // Not echoed: a mistyped URL may still carry a password.
      throw new UsageError('--url is not a URL');
    }
    if (base.protocol !== 'http:' && base.protocol !== 'https:') {
      throw new UsageError(`--url: '${redactUrl(url)}' must start with http:// or https://`);
    }
    this.#base = base;
    this.#key = key;
  }

  /** A client for `args`' `--url` and `--key`, or the environment's, `prefer`'s key first. */
  static fromArgs(
    args: Args,
    prefer: KeyPreference = 'admin',
    env: NodeJS.ProcessEnv = process.env,
  ): ApiClient {
    const url = args.string('url') || env.TOKENWARDEN_URL || DEFAULT_URL;
    const envs = KEY_ENVS[prefer];
    // The admin key may also sit in a file (TOKENWARDEN_ADMIN_KEY_FILE), read only if needed.
    const fromEnv = (name: string) =>
      name === 'TOKENWARDEN_ADMIN_KEY' ? adminKeyFromEnv(env) : env[name];
    let key = args.string('key');
    for (const name of envs) key ||= fromEnv(name);
    if (!key) {
      const [first, then] = envs;
      throw new UsageError(`no API key: set ${first} (or ${then}) or pass --key`, args.command);
    }
    return new ApiClient(url, key);
  }

  get url(): string {
    return this.#base.href.replace(/\/$/, '');
  }

  /** The URL for messages: a password in it is masked. */
  get #shownUrl(): string {
    return redactUrl(this.url);
  }

  get<T>(path: string, query: Record<string, string | undefined> = {}): Promise<T> {
    const search = new URLSearchParams();
    for (const [name, value] of Object.entries(query)) {
      if (value !== undefined && value !== '') search.set(name, value);
    }
    const suffix = search.size > 0 ? `?${search}` : '';
    return this.request<T>('GET', `${path}${suffix}`);
  }

  post<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('POST', path, body);
  }

  put<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('PUT', path, body);
  }

  patch<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('PATCH', path, body);
  }

  delete(path: string): Promise<void> {
    return this.request<void>('DELETE', path);
  }

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const url = new URL(path.replace(/^\//, ''), `${this.url}/`);
    let response: Response;
    try {
      response = await fetch(url, {
        method,
        headers: {
          authorization: `Bearer ${this.#key}`,
          accept: 'application/json',
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(TIMEOUT_MS),
      });
    } catch (error) {
      throw new CliError(describeNetworkError(error, this.#shownUrl));
    }
    const text = await response.text();
    if (response.status === 204) return undefined as T;
    let answer: unknown;
    try {
      answer = text === '' ? undefined : JSON.parse(text);
    } catch {
      // Another server on that port, a proxy's error page, a mistyped --url: say so.
      throw new CliError(notTokenwarden(this.#shownUrl, `${method} ${url.pathname}`, response));
    }
    if (response.ok) return answer as T;
    const error = answer as { error?: unknown; message?: unknown } | undefined;
    if (typeof error?.error !== 'string') {
      throw new CliError(notTokenwarden(this.#shownUrl, `${method} ${url.pathname}`, response));
    }
    const message = typeof error.message === 'string' ? `: ${error.message}` : '';
    throw new CliError(`${error.error}${message}`.replace(/\s*\n\s*/g, ' '));
  }
}

/** Every answer of the API is JSON, and every error `{"error", "message"}`: this one was not. */
function notTokenwarden(url: string, request: string, response: Response): string {
  const status = `HTTP ${response.status} ${response.statusText}`.trimEnd();
  const type = response.headers.get('content-type')?.split(';')[0]?.trim() || 'no content type';
  return (
    `${url} does not look like a Tokenwarden server: ${request} answered ${status} (${type}), ` +
    `not the API's JSON; check --url or TOKENWARDEN_URL`
  );
}

function describeNetworkError(error: unknown, url: string): string {
  const name = (error as { name?: string }).name;
  if (name === 'TimeoutError' || name === 'AbortError') {
    return `no answer from Tokenwarden at ${url} within ${TIMEOUT_MS / 1000} s`;
  }
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  const code = cause?.code ?? (error as { code?: string }).code;
  switch (code) {
    case 'ECONNREFUSED':
      return `cannot connect to Tokenwarden at ${url} (connection refused): is 'tokenwarden serve' running? Set --url or TOKENWARDEN_URL`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `cannot resolve the host of ${url} (${code}); check --url or TOKENWARDEN_URL`;
    default:
      return `cannot reach Tokenwarden at ${url} (${code ?? cause?.message ?? 'network error'})`;
  }
}

// A small fetch wrapper for the commands that talk to a running server. Every failure becomes a
// CliError with one line: the API's `{"error", "message"}` as `forbidden: ...`, a network
// failure as a sentence naming the URL.
import type { Args, OptionSpec } from './args.ts';
import { CliError, UsageError } from './errors.ts';
import { redactUrl } from './redact-url.ts';

export const DEFAULT_URL = 'http://127.0.0.1:8080';

/** The options every API-talking command accepts. */
export const API_OPTIONS: OptionSpec = {
  url: { type: 'string' },
  key: { type: 'string' },
  json: { type: 'boolean' },
};

export const API_HELP = `Server options:
  --url <url>   Tokenwarden server (env TOKENWARDEN_URL, default ${DEFAULT_URL})
  --key <key>   API key (env TOKENWARDEN_API_KEY, then TOKENWARDEN_ADMIN_KEY); prefer the
                environment: a key on the command line is visible to other local users
  --json        print JSON instead of a table`;

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

  static fromArgs(args: Args, env: NodeJS.ProcessEnv = process.env): ApiClient {
    const url = args.string('url') || env.TOKENWARDEN_URL || DEFAULT_URL;
    const key = args.string('key') || env.TOKENWARDEN_API_KEY || env.TOKENWARDEN_ADMIN_KEY;
    if (!key) {
      throw new UsageError(
        'no API key: set TOKENWARDEN_API_KEY (or TOKENWARDEN_ADMIN_KEY for admin commands) or pass --key',
        args.command,
      );
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
    if (!response.ok) throw new CliError(describeHttpError(response, text));
    if (response.status === 204 || text === '') return undefined as T;
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new CliError(
        `${method} ${url.pathname}: the server at ${this.#shownUrl} answered ${response.status} with a body that is not JSON`,
      );
    }
  }
}

function describeHttpError(response: Response, text: string): string {
  try {
    const body = JSON.parse(text) as { error?: unknown; message?: unknown };
    if (typeof body.error === 'string') {
      const message = typeof body.message === 'string' ? `: ${body.message}` : '';
      return `${body.error}${message}`.replace(/\s*\n\s*/g, ' ');
    }
  } catch {
    // Not the API's error shape (a proxy, another server on that port): fall through.
  }
  return `the server answered HTTP ${response.status} ${response.statusText}`.trimEnd();
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

// Where a proxied request goes: one of the provider's `api_base_urls`, and a path that stays
// under it. Everything here is about what a caller could do to reach another destination.
import { InvalidRequestError, ProxyNotConfiguredError } from '../errors.ts';

/** The header naming which of several base URLs (or which origin) a request is for. */
export const UPSTREAM_HEADER = 'tokenwarden-upstream';

export interface UpstreamTarget {
  /** `https://slack.com`: what undici connects to. */
  origin: string;
  /** Path and query as sent upstream, `/api/chat.postMessage?x=1`. */
  path: string;
  /** The path without the query: what the audit log records. */
  pathname: string;
}

/** `scheme:` at the start: what makes a reference absolute (RFC 3986 §4.3). */
const SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*:/;

/**
 * The upstream URL for `tail` (the request's path after `/v1/proxy/{id}/`, still percent-encoded
 * as sent) and `query` (after `?`, or ''), under one of `bases` (a resolved provider's
 * `apiBaseUrls`).
 *
 * `choice` (the `tokenwarden-upstream` header) picks the base: one of the base URLs as written,
 * or an origin, in which case `tail` is relative to that origin and must lie under one of its
 * base URLs (what an SDK does with a full URL). Without it, the first base URL.
 *
 * Refused (typed, before anything is sent): a `.` or `..` segment, also percent-encoded or
 * hidden behind an encoded slash (`..%2f`), a backslash, a control character, a `//` or
 * `scheme:` start that would make the path a URL of its own, and a result outside the base.
 */
export function upstreamTarget(
  bases: readonly string[],
  tail: string,
  query: string,
  choice: string | undefined,
): UpstreamTarget {
  if (bases.length === 0) throw new ProxyNotConfiguredError();
  checkTail(tail);
  const { base, within } = chooseBase(bases, choice);
  const url = new URL(`${base}/${tail}${query === '' ? '' : `?${query}`}`);
  // Defence in depth: whatever the checks above missed, the URL parser has the last word.
  if (!within.some((prefix) => isUnder(url, prefix))) {
    throw new InvalidRequestError('The proxied path leaves the API base URL.');
  }
  return { origin: url.origin, path: url.pathname + url.search, pathname: url.pathname };
}

function checkTail(tail: string): void {
  if (tail.startsWith('/') || SCHEME.test(tail)) {
    throw new InvalidRequestError(
      'The proxied path must be relative to the API base URL, not a URL of its own.',
    );
  }
  if (tail.includes('\\')) {
    throw new InvalidRequestError('The proxied path must not contain a backslash.');
  }
  for (const segment of tail.split('/')) {
    let decoded: string;
    try {
      decoded = decodeURIComponent(segment);
    } catch {
      throw new InvalidRequestError('The proxied path is not validly percent-encoded UTF-8.');
    }
    // An encoded slash is kept as it is (`group%2Fproject` is a real API's id), but what it
    // hides is checked as if it were a separator: an upstream that decodes it must not climb.
    for (const piece of decoded.split(/[/\\]/)) {
      if (piece === '.' || piece === '..') {
        throw new InvalidRequestError('The proxied path must not contain . or .. segments.');
      }
    }
    // eslint-disable-next-line no-control-regex
    if (/[\x00-\x1f\x7f]/.test(decoded)) {
      throw new InvalidRequestError('The proxied path must not contain control characters.');
    }
  }
}

/** The base to resolve against, and the prefixes the result must lie under. */
function chooseBase(
  bases: readonly string[],
  choice: string | undefined,
): { base: string; within: string[] } {
  if (choice === undefined) return { base: bases[0]!, within: [bases[0]!] };
  const named = choice.replace(/\/+$/, '');
  if (bases.includes(named)) return { base: named, within: [named] };
  const sameOrigin = bases.filter((base) => originOf(base) === named);
  if (sameOrigin.length > 0) return { base: named, within: sameOrigin };
  throw new InvalidRequestError(
    `${UPSTREAM_HEADER} must be one of the provider's api_base_urls (or their origins): ${bases.join(', ')}`.slice(
      0,
      600,
    ),
  );
}

/** A base URL's origin and path prefix, parsed once: a provider has few, each call checks one. */
const parsedBases = new Map<string, { origin: string; path: string }>();

function parsedBase(base: string): { origin: string; path: string } {
  let parsed = parsedBases.get(base);
  if (parsed === undefined) {
    const url = new URL(base);
    parsed = { origin: url.origin, path: url.pathname.replace(/\/+$/, '') };
    // Bounded: base URLs change only when an operator edits a provider.
    if (parsedBases.size >= 1000) parsedBases.clear();
    parsedBases.set(base, parsed);
  }
  return parsed;
}

function originOf(base: string): string {
  return parsedBase(base).origin;
}

function isUnder(url: URL, prefix: string): boolean {
  const { origin, path } = parsedBase(prefix);
  if (url.origin !== origin) return false;
  return path === '' || url.pathname === path || url.pathname.startsWith(`${path}/`);
}

import { InvalidInputError } from '../errors.ts';

export function isLoopback(hostname: string): boolean {
  return (
    hostname === 'localhost' ||
    hostname === '[::1]' ||
    hostname === '::1' ||
    /^127(\.\d{1,3}){3}$/.test(hostname)
  );
}

/** https, or plain http on a loopback host only (tests, a local proxy). */
export function isSecureUrl(url: URL): boolean {
  return url.protocol === 'https:' || (url.protocol === 'http:' && isLoopback(url.hostname));
}

/**
 * An endpoint Tokenwarden sends secrets to: https, or plain http on loopback only, and no user
 * info — `fetch` refuses to send to such a URL, and a password in it would be stored and shown
 * in plaintext.
 */
export function endpointUrl(field: string, value: unknown): string {
  const url = parseUrl(field, value);
  if (!isSecureUrl(url)) {
    throw new InvalidInputError(field, 'must be https (plain http only on loopback)');
  }
  if (url.username !== '' || url.password !== '') {
    throw new InvalidInputError(field, 'must be a URL without user info (user:password@)');
  }
  return url.href;
}

/**
 * An origin (with an optional path prefix) that a provider's access tokens may be sent to:
 * the same rule as an endpoint, and nothing that could make two spellings of one prefix differ
 * or hide a second host (no user info, query or fragment).
 */
export function apiBaseUrl(field: string, value: unknown): string {
  const href = endpointUrl(field, value);
  const url = new URL(href);
  if (url.search !== '' || url.hash !== '') {
    throw new InvalidInputError(field, 'must be a URL without user info, query or fragment');
  }
  // `https://api.example/v1/` and `https://api.example/v1` name the same prefix.
  return url.pathname === '/' ? url.origin : `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
}

function parseUrl(field: string, value: unknown): URL {
  try {
    return new URL(value as string);
  } catch {
    throw new InvalidInputError(field, 'is not a valid URL');
  }
}

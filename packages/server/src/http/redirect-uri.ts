import { InvalidRequestError } from '../errors.ts';

/** RFC 8252 §7.3: loopback redirects may use plain http. `localhost` only by name. */
function isLoopbackHost(hostname: string): boolean {
  return (
    hostname === 'localhost' ||
    hostname === '[::1]' ||
    /^127\.(?:\d{1,3})\.(?:\d{1,3})\.(?:\d{1,3})$/.test(hostname)
  );
}

/**
 * Where a connect session may send the browser back to: an absolute https URL (plain http only
 * on loopback), with no fragment (RFC 6749 §3.1.2) and no user info (it would put credentials
 * in a Location header), and, when origins are configured, one of those. Answers the URI as
 * given; throws InvalidRequestError naming the rule, never quoting the value.
 */
export function checkRedirect(value: string, origins: ReadonlySet<string> | undefined): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InvalidRequestError('redirect_uri: must be an absolute URL');
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopbackHost(url.hostname))) {
    throw new InvalidRequestError('redirect_uri: must be https (plain http only on loopback)');
  }
  if (value.includes('#')) throw new InvalidRequestError('redirect_uri: must not have a fragment');
  if (url.username !== '' || url.password !== '') {
    throw new InvalidRequestError('redirect_uri: must not carry user info');
  }
  if ([...value].some((c) => c.charCodeAt(0) <= 0x20 || c.charCodeAt(0) === 0x7f)) {
    // The URL parser would silently drop some of them, so the URI stored is not the one checked.
    throw new InvalidRequestError('redirect_uri: must not contain spaces or control characters');
  }
  if (origins && !origins.has(url.origin)) {
    throw new InvalidRequestError(
      "redirect_uri: its origin is not one of the server's allowed origins",
    );
  }
  return value;
}

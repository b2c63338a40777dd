import { InvalidRequestError } from '../errors.ts';

/**
 * What the server asks of a connect session's redirect URI on top of core's `checkRedirectUri`
 * (which `ConnectFlow.start` applies: absolute, https or loopback http, no fragment, length): no
 * user info (it would put credentials in a Location header), no spaces or control characters,
 * and, when origins are configured, one of those. Answers the URI as given; throws
 * InvalidRequestError naming the rule, never quoting the value.
 */
export function checkRedirect(value: string, origins: ReadonlySet<string> | undefined): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InvalidRequestError('redirect_uri: must be an absolute URL');
  }
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

import { createHmac, timingSafeEqual } from 'node:crypto';
import { TokenwardenError } from './errors.ts';

/**
 * Verifying Tokenwarden's webhooks in a backend, as the Standard Webhooks specification says
 * (https://www.standardwebhooks.com): `webhook-signature` holds one or more `v1,<base64>`
 * signatures, each the HMAC-SHA256 of `<webhook-id>.<webhook-timestamp>.<body>` under the
 * endpoint's secret (`whsec_<base64>`); during a secret rotation it holds one per secret.
 */

/** A lifecycle event as Tokenwarden sends it (see the server's README, "Webhooks"). */
export interface WebhookEvent {
  type:
    | 'connection.created'
    | 'connection.deleted'
    | 'connection.needs_reauth'
    | 'connection.reauthorized'
    | 'connection.refresh_failing'
    | 'connection.refresh_recovered'
    // A newer server may send other types: they arrive as they are.
    | (string & {});
  /** The `webhook-id`: deliveries are at least once, so use it to drop a repeat. */
  id: string;
  timestamp: string;
  data: {
    connection_id: string;
    owner: string;
    provider: string;
    status: string;
    version: number;
    reason?: string;
    error?: string;
  };
}

export interface VerifyWebhookOptions {
  /** How far `webhook-timestamp` may be from now, either way. Default 300 s. */
  toleranceSeconds?: number;
  /** Now, in epoch ms (tests). Default `Date.now()`. */
  now?: number;
}

/** The delivery is not one Tokenwarden signed with this secret, or too old to trust. */
export class WebhookVerificationError extends TokenwardenError {
  constructor(message: string) {
    super('webhook_invalid', message);
    this.name = 'WebhookVerificationError';
  }
}

type HeaderSource =
  { get(name: string): string | null } | Record<string, string | string[] | undefined>;

/**
 * Checks a delivery and returns its event. `body` must be the raw request body, as received
 * (bytes or text), not JSON parsed and serialised again. `headers` may be a `Headers` (fetch,
 * Hono, Next.js) or Node's `req.headers`. Throws `WebhookVerificationError`, without quoting
 * the secret or a signature.
 */
export function verifyWebhook(
  secret: string,
  headers: HeaderSource,
  body: string | Uint8Array,
  options: VerifyWebhookOptions = {},
): WebhookEvent {
  const id = header(headers, 'webhook-id');
  const timestamp = header(headers, 'webhook-timestamp');
  const signatures = header(headers, 'webhook-signature');
  if (!id || !timestamp || !signatures) {
    throw new WebhookVerificationError(
      'missing webhook-id, webhook-timestamp or webhook-signature header',
    );
  }
  if (!/^\d{1,12}$/.test(timestamp)) {
    throw new WebhookVerificationError('webhook-timestamp is not a number of seconds');
  }
  const tolerance = options.toleranceSeconds ?? 300;
  const nowSeconds = Math.floor((options.now ?? Date.now()) / 1000);
  if (Math.abs(nowSeconds - Number(timestamp)) > tolerance) {
    throw new WebhookVerificationError(
      `webhook-timestamp is more than ${tolerance} s from now (a replay, or a clock off)`,
    );
  }
  const text = typeof body === 'string' ? body : Buffer.from(body).toString('utf8');
  const expected = createHmac('sha256', secretKey(secret))
    .update(`${id}.${timestamp}.`)
    .update(text)
    .digest();
  const matches = signatures.split(' ').some((entry) => {
    const [version, signature] = entry.split(',', 2);
    if (version !== 'v1' || !signature) return false;
    const given = Buffer.from(signature, 'base64');
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
  if (!matches) throw new WebhookVerificationError('no signature matches this secret');
  try {
    return JSON.parse(text) as WebhookEvent;
  } catch {
    throw new WebhookVerificationError('the body is not JSON');
  }
}

function secretKey(secret: string): Buffer {
  if (typeof secret !== 'string' || !secret.startsWith('whsec_') || secret.length <= 6) {
    throw new TypeError('secret must be the whsec_... secret the endpoint was created with');
  }
  return Buffer.from(secret.slice('whsec_'.length), 'base64');
}

function header(headers: HeaderSource, name: string): string | undefined {
  if (typeof (headers as { get?: unknown }).get === 'function') {
    return (headers as { get(name: string): string | null }).get(name) ?? undefined;
  }
  const value = (headers as Record<string, string | string[] | undefined>)[name];
  return Array.isArray(value) ? value[0] : value;
}

import { verifyWebhook, WebhookVerificationError } from '@tokenwarden/client';
import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';

// verifyWebhook against signatures made by the independent `standardwebhooks` package.

const SECRET = `whsec_${Buffer.from('a-test-key-of-32-bytes-exactly!!').toString('base64')}`;
const OTHER = `whsec_${Buffer.from('another-key-of-32-bytes-exactly!').toString('base64')}`;
const BODY = JSON.stringify({
  type: 'connection.needs_reauth',
  id: 'msg_1',
  timestamp: '2026-12-04T00:00:00.000Z',
  data: { connection_id: 'conn_1', owner: 'u', provider: 'p', status: 'needs_reauth', version: 2 },
});
const NOW = Date.now();

function signed(secret = SECRET, at = NOW, id = 'msg_1'): Record<string, string> {
  const signature = new Webhook(secret).sign(id, new Date(at), BODY);
  return {
    'webhook-id': id,
    'webhook-timestamp': String(Math.floor(at / 1000)),
    'webhook-signature': signature,
  };
}

describe('verifyWebhook', () => {
  it('returns the event of a delivery signed with the secret, from headers or a Headers', () => {
    expect(verifyWebhook(SECRET, signed(), BODY).type).toBe('connection.needs_reauth');
    expect(verifyWebhook(SECRET, new Headers(signed()), Buffer.from(BODY)).id).toBe('msg_1');
  });

  it('accepts any of several signatures (a rotation)', () => {
    const both = signed();
    both['webhook-signature'] =
      `${signed(OTHER)['webhook-signature']} ${both['webhook-signature']}`;
    expect(verifyWebhook(SECRET, both, BODY).id).toBe('msg_1');
    expect(verifyWebhook(OTHER, both, BODY).id).toBe('msg_1');
  });

  it.each([
    ['another secret', () => verifyWebhook(OTHER, signed(), BODY)],
    ['a changed body', () => verifyWebhook(SECRET, signed(), BODY.replace('conn_1', 'conn_2'))],
    ['another id', () => verifyWebhook(SECRET, { ...signed(), 'webhook-id': 'msg_2' }, BODY)],
    ['a stale timestamp', () => verifyWebhook(SECRET, signed(SECRET, NOW - 301_000), BODY)],
    ['a timestamp in the future', () => verifyWebhook(SECRET, signed(SECRET, NOW + 301_000), BODY)],
    ['no signature header', () => verifyWebhook(SECRET, { 'webhook-id': 'msg_1' }, BODY)],
    [
      'a timestamp that is no number',
      () => verifyWebhook(SECRET, { ...signed(), 'webhook-timestamp': 'soon' }, BODY),
    ],
    [
      'a v2 signature',
      () => verifyWebhook(SECRET, { ...signed(), 'webhook-signature': 'v2,AAAA' }, BODY),
    ],
  ])('refuses %s with WebhookVerificationError', (_, verify) => {
    expect(verify).toThrow(WebhookVerificationError);
    try {
      verify();
    } catch (error) {
      expect((error as WebhookVerificationError).code).toBe('webhook_invalid');
      expect((error as Error).message).not.toContain(SECRET.slice(6));
    }
  });

  it('honours a tolerance of its own', () => {
    const old = signed(SECRET, NOW - 600_000);
    expect(verifyWebhook(SECRET, old, BODY, { toleranceSeconds: 900 }).id).toBe('msg_1');
  });

  it('refuses a secret that is not whsec_... with a TypeError', () => {
    expect(() => verifyWebhook('plain', signed(), BODY)).toThrow(TypeError);
  });
});

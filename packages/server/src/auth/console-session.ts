// The console's sessions: the admin key is exchanged once for a signed, short-lived session
// token kept in an HttpOnly cookie. Signed rather than stored: every replica sharing the key
// ring verifies it with no table, no migration and no read per request. The price: signing out
// clears the cookie but cannot recall a copy of it, so sessions are short (SESSION_TTL_MS).
import { createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import type { KeyRing } from '@tokenwarden/core';

export const SESSION_COOKIE = 'tw_console_session';
/** A session ends this long after sign-in, whatever it does meanwhile. */
export const SESSION_TTL_MS = 30 * 60 * 1000;

export interface ConsoleSession {
  expiresAtMs: number;
  /** Sent back by the page in `x-csrf-token` on every state-changing request. */
  csrfToken: string;
}

const TOKEN = /^([A-Za-z0-9._-]{1,64})~(\d{13})~([A-Za-z0-9_-]{43})~([A-Za-z0-9_-]{43})$/;

/** Signs and verifies session tokens `<key id>~<expiry ms>~<csrf>~<mac>`. */
export class SessionSigner {
  readonly #keyRing: KeyRing;
  readonly #keys = new Map<string, Buffer>();

  constructor(keyRing: KeyRing) {
    this.#keyRing = keyRing;
  }

  issue(nowMs: number): { token: string; session: ConsoleSession } {
    const keyId = this.#keyRing.activeKeyId;
    const session = {
      expiresAtMs: nowMs + SESSION_TTL_MS,
      csrfToken: randomBytes(32).toString('base64url'),
    };
    const signed = `${keyId}~${session.expiresAtMs}~${session.csrfToken}`;
    return { token: `${signed}~${this.#mac(keyId, signed)!.toString('base64url')}`, session };
  }

  /** The session a token stands for, or undefined when it is malformed, forged or expired. */
  verify(token: string | undefined, nowMs: number): ConsoleSession | undefined {
    const match = token === undefined ? null : TOKEN.exec(token);
    if (!match) return undefined;
    const [, keyId, expiry, csrfToken, mac] = match as unknown as [
      string,
      string,
      string,
      string,
      string,
    ];
    // A session signed before a key-ring rotation stays valid while its key is in the ring.
    const expected = this.#mac(keyId, `${keyId}~${expiry}~${csrfToken}`);
    const presented = Buffer.from(mac, 'base64url');
    if (!expected || presented.length !== expected.length) return undefined;
    if (!timingSafeEqual(presented, expected)) return undefined;
    const expiresAtMs = Number(expiry);
    return nowMs < expiresAtMs ? { expiresAtMs, csrfToken } : undefined;
  }

  #mac(keyId: string, signed: string): Buffer | undefined {
    let key = this.#keys.get(keyId);
    if (!key) {
      const material = this.#keyRing.get(keyId);
      if (!material) return undefined;
      // Its own key, derived: a MAC made with it is never mistaken for anything the ring seals.
      key = Buffer.from(hkdfSync('sha256', material, '', 'tokenwarden console session', 32));
      this.#keys.set(keyId, key);
    }
    return createHmac('sha256', key).update(signed).digest();
  }
}

/** One cookie's value from a `Cookie` header (RFC 6265 §5.4), or undefined. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const pair of header.split(';')) {
    const at = pair.indexOf('=');
    if (at > 0 && pair.slice(0, at).trim() === name) return pair.slice(at + 1).trim();
  }
  return undefined;
}

/** Whether two CSRF tokens are equal, in constant time. */
export function sameToken(presented: string | undefined, expected: string): boolean {
  if (presented === undefined) return false;
  const a = Buffer.from(presented);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

import { hash, timingSafeEqual } from 'node:crypto';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { CertificateBinding, ServiceStore } from '@tokenwarden/core';
import { UnauthorizedError } from '../errors.ts';
import { isAdminKey, type AdminKeySource } from './admin-keys.ts';
import { ADMIN, type Principal } from './principal.ts';

/** RFC 6750 §2.1; the scheme name is case-insensitive (RFC 9110 §11.1). */
const BEARER = /^Bearer ([\x21-\x7e]{1,512})$/i;

/** A service client's key (`tw_<client id>_<secret>`, see api-keys.ts) after the scheme: one match. */
const BEARER_CLIENT_KEY = /^[Bb][Ee][Aa][Rr][Ee][Rr] tw_(cli_[0-9a-f]{20})_([A-Za-z0-9_-]{43})$/;

/**
 * Turns an `Authorization` header into a principal. A service-client key costs one read of the
 * client's row and one SHA-256. On Postgres the read always goes to the database; on SQLite the
 * store may answer it from memory, but only while the database vouches that nothing was written
 * since (core's `RowCache`). Either way a revoked client is refused by every replica and process
 * on its very next request. buildServer hands it the guarded store (`guardStore`), so a database
 * outage answers `store_unavailable`, which a client retries.
 */
export class Authenticator {
  readonly #service: ServiceStore;
  readonly #adminKeys: AdminKeySource;

  /** `adminKeys`: the admin key's hash, or where to read it at each admin request. */
  constructor(service: ServiceStore, adminKeys: AdminKeySource) {
    this.#service = service;
    this.#adminKeys = adminKeys;
  }

  /**
   * Not async itself: a client key's promise is the read's own, with no extra frame around it.
   * `socket` is the request's connection: its TLS client certificate is looked at only for a
   * client bound to one.
   */
  authenticate(header: string | undefined, socket?: Socket): Promise<Principal> {
    const clientKey = header === undefined ? null : BEARER_CLIENT_KEY.exec(header);
    return clientKey ? this.#client(clientKey[1]!, clientKey[2]!, socket) : this.#otherKey(header);
  }

  async #otherKey(header: string | undefined): Promise<Principal> {
    const match = header === undefined ? null : BEARER.exec(header);
    if (!match) throw new UnauthorizedError('Send Authorization: Bearer <api key>.');
    // A client key never gets here: BEARER_CLIENT_KEY took every header that carries one.
    if (await isAdminKey(match[1]!, this.#adminKeys, Date.now())) return ADMIN;
    throw new UnauthorizedError('The API key is unknown or revoked.');
  }

  /** The client's row as the store has it now (see above): a revocation counts at once. */
  async #client(clientId: string, secret: string, socket: Socket | undefined): Promise<Principal> {
    const client = await this.#service.getClient(clientId);
    if (client && client.revokedAt === null) {
      const stored = Buffer.from(client.keyHash, 'hex');
      // One-shot hash: no Hash object per request (Node ≥ 20.12).
      const digest = hash('sha256', secret, 'buffer');
      if (stored.length === 32 && timingSafeEqual(digest, stored)) {
        if (client.certificate !== null && !presents(socket, client.certificate)) {
          throw new UnauthorizedError(
            'This client is bound to a TLS client certificate, which the request did not present.',
          );
        }
        return { kind: 'client', clientId: client.id, grants: client.grants };
      }
    }
    throw new UnauthorizedError('The API key is unknown or revoked.');
  }
}

/**
 * Whether the connection carries the bound certificate, verified against the server's client CA
 * (an unverified certificate counts as none: anyone can make one with the right name).
 */
function presents(socket: Socket | undefined, binding: CertificateBinding): boolean {
  const tls = socket as TLSSocket | undefined;
  if (!tls?.encrypted || !tls.authorized) return false;
  const peer = tls.getPeerCertificate();
  if (!peer || Object.keys(peer).length === 0) return false;
  return 'sha256' in binding
    ? peer.fingerprint256 === binding.sha256
    : peer.subject?.CN === binding.subjectCn;
}

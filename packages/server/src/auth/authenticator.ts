import type { ServiceStore } from '@tokenwarden/core';
import { UnauthorizedError } from '../errors.ts';
import { hashApiKey, hashesEqual, parseClientKey } from './api-keys.ts';
import { ADMIN, type Principal } from './principal.ts';

/** RFC 6750 §2.1; the scheme name is case-insensitive (RFC 9110 §11.1). */
const BEARER = /^Bearer ([\x21-\x7e]{1,512})$/i;

/**
 * Turns an `Authorization` header into a principal. A service-client key costs one indexed read
 * of the client's row and one SHA-256; nothing is cached, so a revoked client is refused by every
 * replica on its very next request.
 */
export class Authenticator {
  readonly #service: ServiceStore;
  readonly #adminKeyHash: string;

  constructor(service: ServiceStore, adminKeyHash: string) {
    this.#service = service;
    this.#adminKeyHash = adminKeyHash;
  }

  async authenticate(header: string | undefined): Promise<Principal> {
    const match = header === undefined ? null : BEARER.exec(header);
    if (!match) throw new UnauthorizedError('Send Authorization: Bearer <api key>.');
    const key = match[1]!;
    const clientKey = parseClientKey(key);
    if (clientKey) {
      const client = await this.#service.getClient(clientKey.clientId);
      if (
        client &&
        client.revokedAt === null &&
        hashesEqual(hashApiKey(clientKey.secret), client.keyHash)
      ) {
        return { kind: 'client', clientId: client.id, grants: client.grants };
      }
      throw new UnauthorizedError('The API key is unknown or revoked.');
    }
    if (hashesEqual(hashApiKey(key), this.#adminKeyHash)) return ADMIN;
    throw new UnauthorizedError('The API key is unknown or revoked.');
  }
}

// The admin key when Tokenwarden keeps it (no TOKENWARDEN_ADMIN_KEY): its hash in the settings
// table, and after a rotation the previous one's hash with the end of its overlap. The server
// reads both on every admin request, so a rotation by `tokenwarden admin-key rotate` counts on
// every replica at once, and the old key stops working when its overlap ends.
import type { ServiceStore } from '@tokenwarden/core';
import { generateApiKey, hashApiKey, hashesEqual } from './api-keys.ts';

export const ADMIN_KEY_SETTING = 'admin_key_hash';
/** JSON `{ hash, until_ms }`: the key replaced by the last rotation, valid until `until_ms`. */
export const PREVIOUS_ADMIN_KEY_SETTING = 'admin_key_previous';

export interface AdminKeyHashes {
  current: string;
  previous?: { hash: string; untilMs: number };
}

/** Where the authenticator finds the admin key's hashes: fixed, or read at each admin request. */
export type AdminKeySource = string | (() => Promise<AdminKeyHashes>);

export function storedAdminKeys(service: Pick<ServiceStore, 'getSetting'>): AdminKeySource {
  return async () => {
    const [current, previous] = await Promise.all([
      service.getSetting(ADMIN_KEY_SETTING),
      service.getSetting(PREVIOUS_ADMIN_KEY_SETTING),
    ]);
    // A database without an admin key hash accepts no admin key at all.
    return {
      current: current ?? '',
      previous: previous === undefined ? undefined : parsePrevious(previous),
    };
  };
}

/** Whether `key` is the admin key: the current one, or the previous one within its overlap. */
export async function isAdminKey(
  key: string,
  source: AdminKeySource,
  nowMs: number,
): Promise<boolean> {
  const hashes = typeof source === 'string' ? { current: source } : await source();
  const presented = hashApiKey(key);
  if (hashesEqual(presented, hashes.current)) return true;
  const { previous } = hashes;
  return (
    previous !== undefined && nowMs < previous.untilMs && hashesEqual(presented, previous.hash)
  );
}

export class AdminKeyRotationError extends Error {}

/**
 * A new admin key; the one it replaces keeps working for `overlapMs`. Refuses when the database
 * has no admin key of its own (TOKENWARDEN_ADMIN_KEY is the operator's to change) or when another
 * rotation won the race.
 */
export async function rotateAdminKey(
  service: Pick<ServiceStore, 'getSetting' | 'replaceSetting' | 'putSetting'>,
  overlapMs: number,
  nowMs: number,
): Promise<{ key: string; previousUntilMs: number }> {
  const current = await service.getSetting(ADMIN_KEY_SETTING);
  if (current === undefined) {
    throw new AdminKeyRotationError(
      'this database holds no admin key (the server takes it from TOKENWARDEN_ADMIN_KEY): ' +
        'rotate it by giving every replica a new TOKENWARDEN_ADMIN_KEY',
    );
  }
  const key = generateApiKey();
  const previousUntilMs = nowMs + overlapMs;
  // The previous key first: a crash between the two writes leaves the current key as it was.
  await service.putSetting(
    PREVIOUS_ADMIN_KEY_SETTING,
    JSON.stringify({ hash: current, until_ms: previousUntilMs }),
  );
  if (!(await service.replaceSetting(ADMIN_KEY_SETTING, current, hashApiKey(key)))) {
    throw new AdminKeyRotationError(
      'another rotation of the admin key ran at the same time; run it again',
    );
  }
  return { key, previousUntilMs };
}

function parsePrevious(text: string): AdminKeyHashes['previous'] {
  try {
    const { hash, until_ms: untilMs } = JSON.parse(text) as { hash?: unknown; until_ms?: unknown };
    return typeof hash === 'string' && typeof untilMs === 'number' ? { hash, untilMs } : undefined;
  } catch {
    return undefined;
  }
}

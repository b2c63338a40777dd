// The broker keeps the access tokens it opened (decrypting costs more than reading the row): a
// kept token is used again only for the same version and the very same ciphertext.
import { KeyRing, sealField } from '@tokenwarden/core';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { scenario, type Scenario } from './helpers.ts';

let s: Scenario;
afterEach(async () => {
  await s?.cleanup();
});

function setAccessToken(id: string, sealed: string): void {
  s.sql.prepare('update credentials set access_token = ? where id = ?').run(sealed, id);
}

describe('opened access tokens', () => {
  it('opens an unchanged token once, and keeps at most 1,000', async () => {
    s = await scenario();
    const ids: string[] = [];
    for (let i = 0; i <= 1_000; i++) ids.push((await s.importGrant({ expiresIn: 3600 })).id);
    // Every decryption looks its key up in the ring: the count of lookups is the count of opens.
    const opens = vi.spyOn(s.keyRing, 'get');
    const first = await s.broker.getAccessToken(ids[0]!);
    expect(await s.broker.getAccessToken(ids[0]!)).toEqual(first);
    expect(opens).toHaveBeenCalledTimes(1);

    // 1,000 more opened: the first one kept is the first one dropped.
    for (const id of ids.slice(1)) await s.broker.getAccessToken(id);
    expect(opens).toHaveBeenCalledTimes(1_001);
    expect(await s.broker.getAccessToken(ids[0]!)).toEqual(first);
    expect(opens).toHaveBeenCalledTimes(1_002);
  });

  it('a refreshed token replaces the one handed out before', async () => {
    s = await scenario();
    const { id } = await s.importGrant({ expiresIn: 3600 });
    const first = await s.broker.getAccessToken(id);
    expect(await s.broker.getAccessToken(id)).toEqual(first);

    await s.expire(id);
    const refreshed = await s.broker.getAccessToken(id);
    expect(refreshed.version).toBe(first.version + 1);
    expect(refreshed.accessToken).not.toBe(first.accessToken);
    expect(await s.broker.getAccessToken(id)).toEqual(refreshed);
  });

  it('a new ciphertext at the same version is opened again, never answered from memory', async () => {
    s = await scenario();
    const { id } = await s.importGrant({ expiresIn: 3600 });
    const first = await s.broker.getAccessToken(id);
    const ring = KeyRing.parse(s.fixture.keys);

    // Re-sealed (as key rotation does): the same token comes out.
    setAccessToken(
      id,
      sealField(ring, first.accessToken, { credentialId: id, field: 'access_token' }),
    );
    expect(await s.broker.getAccessToken(id)).toEqual(first);

    // Another value under the same version: what the row holds now is what is handed out.
    setAccessToken(id, sealField(ring, 'at_other', { credentialId: id, field: 'access_token' }));
    expect((await s.broker.getAccessToken(id)).accessToken).toBe('at_other');

    // A ciphertext of another row does not open here, even right after a hand-out.
    const other = await s.importGrant({ expiresIn: 3600 });
    await s.broker.getAccessToken(other.id);
    setAccessToken(
      id,
      sealField(ring, 'at_moved', { credentialId: other.id, field: 'access_token' }),
    );
    await expect(s.broker.getAccessToken(id)).rejects.toMatchObject({ code: 'decrypt_failed' });
  });
});

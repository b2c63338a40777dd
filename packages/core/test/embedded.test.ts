import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KeyRing, KeyRingError, loadKeyRing, openEmbedded } from '@tokenwarden/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tw-embedded-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('the embedded default', () => {
  it('generates a 0600 key file with a warning on first use, and reuses it after', async () => {
    const warnings: string[] = [];
    const first = await openEmbedded({ directory: dir, env: {}, warn: (m) => warnings.push(m) });
    await first.store.close();
    expect(first.dbPath).toBe(join(dir, 'tokenwarden.sqlite'));
    expect(statSync(join(dir, 'tokenwarden.keys')).mode & 0o777).toBe(0o600);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('Back the file up');

    const second = await openEmbedded({ directory: dir, env: {}, warn: (m) => warnings.push(m) });
    await second.store.close();
    expect(second.keyRing.activeKeyId).toBe(first.keyRing.activeKeyId);
    expect(warnings).toHaveLength(1);
  });

  it('uses TOKENWARDEN_KEYS and TOKENWARDEN_DB when set, generating nothing', async () => {
    const keys = KeyRing.generate('mine').serialize();
    const embedded = await openEmbedded({
      directory: dir,
      env: { TOKENWARDEN_KEYS: keys, TOKENWARDEN_DB: 'other.sqlite' },
    });
    await embedded.store.close();
    expect(embedded.keyRing.activeKeyId).toBe('mine');
    expect(embedded.dbPath).toBe(join(dir, 'other.sqlite'));
    expect(() => statSync(join(dir, 'tokenwarden.keys'))).toThrow();
  });

  it('never generates a key for a shared database: without keys, loading refuses and says why', () => {
    const error = (() => {
      try {
        loadKeyRing({ env: {} });
      } catch (e) {
        return e;
      }
    })() as KeyRingError;
    expect(error).toBeInstanceOf(KeyRingError);
    expect(error.code).toBe('key_ring_invalid');
    expect(error.message).toContain('TOKENWARDEN_KEYS');
    expect(error.message).toContain('shared database never gets a generated key');
  });
});

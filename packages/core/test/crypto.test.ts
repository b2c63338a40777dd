import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { inspect } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { DecryptError, KeyRingError } from '../src/errors.ts';
import {
  decrypt,
  encrypt,
  keyIdOf,
  KeyRing,
  loadKeyRing,
  openField,
  openProviderSecret,
  sealField,
  sealProviderSecret,
  writeKeyFile as writeRingFile,
  type SecretField,
} from '../src/crypto/index.ts';

const KEY_A = randomBytes(32);
const KEY_B = randomBytes(32);
const SPEC = `a1:${KEY_A.toString('base64')},b2:${KEY_B.toString('base64')}`;
const AD = 'tokenwarden/v1/cred-1/access_token';
const PLAINTEXT = 'ya29.a0AfH6SMBx-secret-access-token';

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(os.tmpdir(), 'tw-crypto-'));
  dirs.push(dir);
  return dir;
}
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** Runs fn, expects it to throw an instance of type, and returns the error. */
function thrown<T extends Error>(type: new (...args: never[]) => T, fn: () => unknown): T {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(type);
    return error as T;
  }
  throw new Error('expected an error to be thrown');
}

/** Asserts that a message reveals none of these secrets, in base64, base64url or hex. */
function expectNoSecrets(message: string, secrets: (Buffer | string)[]): void {
  for (const secret of secrets) {
    const forms =
      typeof secret === 'string'
        ? [secret]
        : [secret.toString('base64'), secret.toString('base64url'), secret.toString('hex')];
    for (const form of forms) expect(message).not.toContain(form);
  }
}

/** Re-encodes one part of a sealed value after XOR-ing one byte of it. */
function tamper(sealed: string, part: 2 | 3, byte: 'first' | 'last'): string {
  const parts = sealed.split('.');
  const bytes = Buffer.from(parts[part] as string, 'base64url');
  bytes[byte === 'first' ? 0 : bytes.length - 1]! ^= 0x01;
  parts[part] = bytes.toString('base64url');
  return parts.join('.');
}

describe('KeyRing.parse', () => {
  it('reads comma-separated entries, active key first', () => {
    const ring = KeyRing.parse(SPEC);
    expect(ring.activeKeyId).toBe('a1');
    expect(ring.keyIds).toEqual(['a1', 'b2']);
    expect(ring.get('a1')?.equals(KEY_A)).toBe(true);
    expect(ring.get('b2')?.equals(KEY_B)).toBe(true);
    expect(ring.get('zz')).toBeUndefined();
  });

  it('tolerates whitespace, newlines and # comment lines, as in a key file', () => {
    const file =
      `# Tokenwarden keys\n  a1:${KEY_A.toString('base64')} ,\r\n` +
      `   # old key, kept for decryption\n\n\tb2:${KEY_B.toString('base64')}\n`;
    expect(KeyRing.parse(file).serialize()).toBe(SPEC);
    // Newline-separated entries without commas read the same way.
    expect(KeyRing.parse(SPEC.replace(',', '\n')).serialize()).toBe(SPEC);
  });

  it('serialize() round-trips through parse()', () => {
    const ring = KeyRing.generate().withNewActiveKey();
    expect(KeyRing.parse(ring.serialize()).serialize()).toBe(ring.serialize());
  });

  const k = KEY_A.toString('base64');
  const short = randomBytes(16).toString('base64');
  const long = randomBytes(33).toString('base64');
  // Encodes with "+" and "/" in base64, "-" and "_" in base64url.
  const URL_KEY = Buffer.alloc(32, 0xfb);
  const cases: [string, string, RegExp, string[]][] = [
    ['empty spec', '', /empty/, []],
    ['only whitespace and comments', ' \n# nothing here\n , ', /empty/, []],
    ['entry without a key id (a bare key)', `a1:${k},${k}`, /entry 2 is malformed/, [k]],
    ['empty key id', `:${k}`, /entry 1 is malformed/, [k]],
    ['key id with invalid characters', `a.b:${k}`, /entry 1 is malformed.*key id/, [k]],
    ['key id longer than 32 characters', `${'x'.repeat(33)}:${k}`, /entry 1 is malformed/, [k]],
    ['missing key', 'a1:', /entry 1 \(key id "a1"\) has no key/, []],
    ['key of 16 bytes', `a1:${short}`, /entry 1 \(key id "a1"\).*16 bytes.*exactly 32/, [short]],
    ['key of 33 bytes', `a1:${long}`, /entry 1 \(key id "a1"\).*33 bytes/, [long]],
    [
      'key not valid base64',
      `a1:${k.slice(0, 40)}!!!=`,
      /entry 1 \(key id "a1"\).*not valid base64/,
      [k.slice(0, 40)],
    ],
    [
      'base64url instead of base64',
      `a1:${URL_KEY.toString('base64url')}=`,
      /entry 1 \(key id "a1"\).*not valid base64/,
      [URL_KEY.toString('base64url')],
    ],
    // The 43rd character's two low bits are padding; "B" sets one, so this decodes to 32 bytes
    // but is not the canonical encoding of any key.
    [
      'non-canonical base64',
      `a1:${k.slice(0, 42)}B=`,
      /entry 1 \(key id "a1"\).*not valid base64 \(non-canonical/,
      [k.slice(0, 42)],
    ],
    [
      'duplicate key ids',
      `a1:${k},b2:${KEY_B.toString('base64')},a1:${k}`,
      /entry 3 \(key id "a1"\) repeats the key id of entry 1/,
      [k],
    ],
  ];
  it.each(cases)(
    'rejects %s with a KeyRingError that names the entry but not the key',
    (_, spec, message, secrets) => {
      const error = thrown(KeyRingError, () => KeyRing.parse(spec));
      expect(error.code).toBe('key_ring_invalid');
      expect(error.message).toMatch(message);
      expectNoSecrets(error.message, [...secrets, KEY_A, KEY_B]);
    },
  );
});

describe('KeyRing', () => {
  it('generate() makes one 32-byte key with a dated random id', () => {
    const ring = KeyRing.generate();
    const day = new Date().toISOString().slice(0, 10).replaceAll('-', '');
    expect(ring.keyIds).toHaveLength(1);
    expect(ring.activeKeyId).toMatch(new RegExp(`^k${day}-[0-9a-f]{6}$`));
    expect(ring.get(ring.activeKeyId)).toHaveLength(32);
    expect(KeyRing.generate().activeKeyId).not.toBe(ring.activeKeyId);
    expect(KeyRing.generate('mine').activeKeyId).toBe('mine');
    expect(() => KeyRing.generate('not valid!')).toThrow(KeyRingError);
  });

  it('withNewActiveKey() prepends a new active key and keeps the old ones', () => {
    const ring = KeyRing.parse(SPEC);
    const rotated = ring.withNewActiveKey('c3');
    expect(rotated.keyIds).toEqual(['c3', 'a1', 'b2']);
    expect(rotated.get('a1')?.equals(KEY_A)).toBe(true);
    expect(rotated.get('c3')?.equals(KEY_A)).toBe(false);
    expect(ring.keyIds).toEqual(['a1', 'b2']); // unchanged
    expect(ring.withNewActiveKey().keyIds).toHaveLength(3);
    expect(() => ring.withNewActiveKey('b2')).toThrow(KeyRingError);
  });

  it('get() returns a copy that cannot change the ring', () => {
    const ring = KeyRing.parse(SPEC);
    ring.get('a1')!.fill(0);
    expect(ring.get('a1')?.equals(KEY_A)).toBe(true);
  });

  it('does not leak keys through JSON.stringify, util.inspect or String()', () => {
    const ring = KeyRing.parse(SPEC);
    for (const text of [JSON.stringify(ring), inspect(ring, { depth: 5 }), String(ring)]) {
      expectNoSecrets(text, [KEY_A, KEY_B]);
    }
    expect(JSON.parse(JSON.stringify(ring))).toEqual({ activeKeyId: 'a1', keyIds: ['a1', 'b2'] });
  });

  it('the constructor validates like parse()', () => {
    expect(() => new KeyRing([])).toThrow(KeyRingError);
    expect(() => new KeyRing([{ id: 'a', key: randomBytes(31) }])).toThrow(KeyRingError);
    expect(() => new KeyRing([{ id: 'a b', key: KEY_A }])).toThrow(KeyRingError);
    expect(
      () =>
        new KeyRing([
          { id: 'a', key: KEY_A },
          { id: 'a', key: KEY_B },
        ]),
    ).toThrow(KeyRingError);
  });
});

describe('encrypt / decrypt', () => {
  const ring = KeyRing.parse(SPEC);

  it('round-trips, in the tw1 format, with the active key', () => {
    const sealed = encrypt(ring, PLAINTEXT, AD);
    expect(sealed).toMatch(/^tw1\.a1\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]+$/);
    expect(sealed).not.toContain(PLAINTEXT);
    expect(keyIdOf(sealed)).toBe('a1');
    expect(decrypt(ring, sealed, AD)).toBe(PLAINTEXT);
    // Body is ciphertext + 16-byte tag.
    const body = Buffer.from(sealed.split('.')[3] as string, 'base64url');
    expect(body).toHaveLength(Buffer.byteLength(PLAINTEXT) + 16);
  });

  it('round-trips unicode and the empty string', () => {
    for (const text of ['', 'héllo wörld — 秘密 🔑 \u0000 end', 'x'.repeat(10_000)]) {
      expect(decrypt(ring, encrypt(ring, text, AD), AD)).toBe(text);
    }
    const unicodeAd = 'tokenwarden/v1/ключ/refresh_token';
    expect(decrypt(ring, encrypt(ring, PLAINTEXT, unicodeAd), unicodeAd)).toBe(PLAINTEXT);
  });

  it('uses a fresh IV each time', () => {
    const a = encrypt(ring, PLAINTEXT, AD);
    const b = encrypt(ring, PLAINTEXT, AD);
    expect(a.split('.')[2]).not.toBe(b.split('.')[2]);
    expect(a).not.toBe(b);
  });

  it('decrypts with an older (non-active) key after rotation', () => {
    const old = KeyRing.parse(`b2:${KEY_B.toString('base64')}`);
    const sealed = encrypt(old, PLAINTEXT, AD);
    expect(keyIdOf(sealed)).toBe('b2');
    expect(decrypt(ring, sealed, AD)).toBe(PLAINTEXT);
    expect(keyIdOf(encrypt(ring, PLAINTEXT, AD))).toBe('a1');

    const rotated = ring.withNewActiveKey('c3');
    expect(keyIdOf(encrypt(rotated, PLAINTEXT, AD))).toBe('c3');
    expect(decrypt(rotated, encrypt(ring, PLAINTEXT, AD), AD)).toBe(PLAINTEXT);
  });

  it('names the missing key id when the key is not in the ring', () => {
    const other = KeyRing.generate('gone');
    const sealed = encrypt(other, PLAINTEXT, AD);
    const error = thrown(DecryptError, () => decrypt(ring, sealed, AD));
    expect(error.code).toBe('decrypt_failed');
    expect(error.message).toContain('"gone"');
    expectNoSecrets(error.message, [PLAINTEXT, sealed, KEY_A, KEY_B, other.get('gone')!]);
  });

  it('fails authentication when the key under the same id was replaced', () => {
    const impostor = KeyRing.generate('a1');
    const sealed = encrypt(impostor, PLAINTEXT, AD);
    const error = thrown(DecryptError, () => decrypt(ring, sealed, AD));
    expect(error.message).toMatch(/failed authentication/);
  });

  const tampered: [string, (sealed: string) => string][] = [
    ['the iv', (s) => tamper(s, 2, 'first')],
    ['the ciphertext', (s) => tamper(s, 3, 'first')],
    ['the tag', (s) => tamper(s, 3, 'last')],
    ['the associated data', (s) => s],
  ];
  it.each(tampered)('rejects a change to %s with DecryptError decrypt_failed', (what, change) => {
    const sealed = encrypt(ring, PLAINTEXT, AD);
    const altered = change(sealed);
    const ad = what === 'the associated data' ? `${AD}x` : AD;
    if (what !== 'the associated data') expect(altered).not.toBe(sealed);
    const error = thrown(DecryptError, () => decrypt(ring, altered, ad));
    expect(error.code).toBe('decrypt_failed');
    expect(error.message).toBe(
      'ciphertext failed authentication under key "a1": it was altered or belongs to another row ' +
        'or field (or key "a1" is not the key it was encrypted with).',
    );
    expectNoSecrets(error.message, [PLAINTEXT, sealed, altered, KEY_A, KEY_B]);
  });

  it('rejects a ciphertext moved under another key id', () => {
    const sealed = encrypt(ring, PLAINTEXT, AD).replace('tw1.a1.', 'tw1.b2.');
    expect(() => decrypt(ring, sealed, AD)).toThrow(/failed authentication/);
  });

  const sealed = encrypt(ring, PLAINTEXT, AD);
  const [, , iv, body] = sealed.split('.') as [string, string, string, string];
  const malformed: [string, string][] = [
    ['a plaintext token', PLAINTEXT],
    ['an empty string', ''],
    ['a wrong version prefix', `tw2.a1.${iv}.${body}`],
    ['too few parts', `tw1.a1.${iv}`],
    ['too many parts', `${sealed}.x`],
    ['an invalid key id', `tw1.a+1.${iv}.${body}`],
    ['an iv of the wrong length', `tw1.a1.${iv}AAAA.${body}`],
    ['an iv that is not base64url', `tw1.a1.${iv.slice(0, -1)}+.${body}`],
    ['a body shorter than the tag', `tw1.a1.${iv}.${body.slice(0, 20)}`],
    ['a non-canonical base64url body', `tw1.a1.${iv}.${body}=`],
  ];
  it.each(malformed)('rejects %s as not in the format, without quoting it', (_, value) => {
    for (const fn of [() => decrypt(ring, value, AD), () => keyIdOf(value)]) {
      const error = thrown(DecryptError, fn);
      expect(error.code).toBe('decrypt_failed');
      expect(error.message).toMatch(/not a Tokenwarden ciphertext/);
      expectNoSecrets(error.message, [PLAINTEXT, iv, body, KEY_A, KEY_B]);
    }
  });

  it('rejects non-canonical base64url that decodes to the same bytes', () => {
    // A 1-byte plaintext gives a 17-byte body: 23 characters whose last carries 2 spare bits.
    const short = encrypt(ring, 'x', AD);
    const parts = short.split('.') as [string, string, string, string];
    const bytes = Buffer.from(parts[3], 'base64url');
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const variants = [...alphabet]
      .map((c) => `${parts[3].slice(0, -1)}${c}`)
      .filter((v) => v !== parts[3] && Buffer.from(v, 'base64url').equals(bytes));
    expect(variants).toHaveLength(3);
    for (const v of variants) {
      expect(() => decrypt(ring, [...parts.slice(0, 3), v].join('.'), AD)).toThrow(
        /not a Tokenwarden ciphertext/,
      );
    }
    expect(decrypt(ring, short, AD)).toBe('x');
  });
});

describe('sealField / openField', () => {
  const ring = KeyRing.parse(SPEC);
  const here = { credentialId: 'cred-1', field: 'refresh_token' as SecretField };

  it('round-trips and binds to tokenwarden/v1/<credentialId>/<field>', () => {
    const sealed = sealField(ring, PLAINTEXT, here);
    expect(openField(ring, sealed, here)).toBe(PLAINTEXT);
    expect(decrypt(ring, sealed, 'tokenwarden/v1/cred-1/refresh_token')).toBe(PLAINTEXT);
    expect(
      openField(ring, encrypt(ring, PLAINTEXT, 'tokenwarden/v1/cred-1/refresh_token'), here),
    ).toBe(PLAINTEXT);
  });

  const moves: [string, { credentialId: string; field: SecretField }][] = [
    ['another credential', { credentialId: 'cred-2', field: 'refresh_token' }],
    ['another field', { credentialId: 'cred-1', field: 'access_token' }],
    ['the client secret field', { credentialId: 'cred-1', field: 'client_secret' }],
    ['a credential id that is a prefix', { credentialId: 'cred-', field: 'refresh_token' }],
  ];
  it.each(moves)('fails when copied to %s', (_, there) => {
    const sealed = sealField(ring, PLAINTEXT, here);
    const error = thrown(DecryptError, () => openField(ring, sealed, there));
    expect(error.code).toBe('decrypt_failed');
    expect(error.message).toMatch(/belongs to another row or field/);
    expectNoSecrets(error.message, [PLAINTEXT, sealed, KEY_A, KEY_B]);
  });

  it('rejects an unknown field or empty credential id', () => {
    expect(() =>
      sealField(ring, PLAINTEXT, { credentialId: 'c', field: 'password' as SecretField }),
    ).toThrow(TypeError);
    expect(() => sealField(ring, PLAINTEXT, { credentialId: '', field: 'access_token' })).toThrow(
      TypeError,
    );
  });
});

describe('sealProviderSecret / openProviderSecret', () => {
  const ring = KeyRing.parse(SPEC);

  it('round-trips, bound to tokenwarden/provider/v1/<name>/client_secret', () => {
    const sealed = sealProviderSecret(ring, PLAINTEXT, 'acme');
    expect(openProviderSecret(ring, sealed, 'acme')).toBe(PLAINTEXT);
    expect(decrypt(ring, sealed, 'tokenwarden/provider/v1/acme/client_secret')).toBe(PLAINTEXT);
  });

  it('fails when copied to another provider, or to or from a credential field', () => {
    const sealed = sealProviderSecret(ring, PLAINTEXT, 'acme');
    const attempts = [
      () => openProviderSecret(ring, sealed, 'globex'),
      () => openProviderSecret(ring, sealed, 'acm'),
      // A credential whose id looks like a provider path cannot open it either.
      () => openField(ring, sealed, { credentialId: 'provider/v1/acme', field: 'client_secret' }),
      () =>
        openProviderSecret(
          ring,
          sealField(ring, PLAINTEXT, { credentialId: 'acme', field: 'client_secret' }),
          'acme',
        ),
    ];
    for (const attempt of attempts) {
      const error = thrown(DecryptError, attempt);
      expect(error.code).toBe('decrypt_failed');
      expectNoSecrets(error.message, [PLAINTEXT, sealed, KEY_A, KEY_B]);
    }
  });

  it('rejects an empty provider name', () => {
    expect(() => sealProviderSecret(ring, PLAINTEXT, '')).toThrow(TypeError);
  });
});

describe('loadKeyRing', () => {
  function collect(): { warnings: string[]; warn: (message: string) => void } {
    const warnings: string[] = [];
    return { warnings, warn: (message) => warnings.push(message) };
  }
  function writeKeyFile(path: string, content: string, mode = 0o600): void {
    writeFileSync(path, content, { mode });
    chmodSync(path, mode); // regardless of umask
  }

  it('prefers TOKENWARDEN_KEYS over a key file', () => {
    const dir = tempDir();
    const keyFile = join(dir, 'keys');
    writeKeyFile(keyFile, KeyRing.generate('file').serialize());
    const { warnings, warn } = collect();
    const env = { TOKENWARDEN_KEYS: SPEC, TOKENWARDEN_KEY_FILE: keyFile };
    expect(loadKeyRing({ env, keyFile, generateIfMissing: true, warn }).serialize()).toBe(SPEC);
    expect(loadKeyRing({ env }).serialize()).toBe(SPEC);
    expect(warnings).toEqual([]);
  });

  it('names TOKENWARDEN_KEYS in a parse error without echoing it', () => {
    const error = thrown(KeyRingError, () =>
      loadKeyRing({ env: { TOKENWARDEN_KEYS: `a1:${KEY_A.toString('base64').slice(4)}` } }),
    );
    expect(error.message).toMatch(/^TOKENWARDEN_KEYS: Key ring entry 1 \(key id "a1"\)/);
    expectNoSecrets(error.message, [KEY_A.toString('base64').slice(4)]);
  });

  it('reads the key file from TOKENWARDEN_KEY_FILE, and the keyFile option over it', () => {
    const dir = tempDir();
    const fromEnv = join(dir, 'env-keys');
    const fromOption = join(dir, 'option-keys');
    writeKeyFile(fromEnv, `# comment\n${SPEC}\n`);
    writeKeyFile(fromOption, KeyRing.generate('opt').serialize());
    const env = { TOKENWARDEN_KEY_FILE: fromEnv };
    expect(loadKeyRing({ env }).serialize()).toBe(SPEC);
    expect(loadKeyRing({ env, keyFile: fromOption }).activeKeyId).toBe('opt');
  });

  it('generates a key file with mode 0600, warns, and reuses it next time', () => {
    const dir = tempDir();
    const keyFile = join(dir, 'nested', 'tokenwarden.keys');
    const first = collect();
    const ring = loadKeyRing({ env: {}, keyFile, generateIfMissing: true, warn: first.warn });

    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    expect(KeyRing.parse(readFileSync(keyFile, 'utf8')).serialize()).toBe(ring.serialize());
    expect(readdirSync(join(dir, 'nested'))).toEqual(['tokenwarden.keys']); // no temp files left
    expect(first.warnings).toHaveLength(1);
    const [warning] = first.warnings as [string];
    expect(warning).toContain(resolve(keyFile));
    expect(warning).toMatch(/every stored credential becomes unreadable/);
    expect(warning).toMatch(/Back the file up/);
    expect(warning).toContain('TOKENWARDEN_KEYS');
    expectNoSecrets(warning, [ring.get(ring.activeKeyId)!]);

    const second = collect();
    const again = loadKeyRing({ env: {}, keyFile, generateIfMissing: true, warn: second.warn });
    expect(again.serialize()).toBe(ring.serialize());
    expect(second.warnings).toEqual([]);
    // Without generateIfMissing the existing file is read too.
    expect(loadKeyRing({ env: { TOKENWARDEN_KEY_FILE: keyFile } }).serialize()).toBe(
      ring.serialize(),
    );
  });

  it.skipIf(process.platform === 'win32')(
    'warns when the key file is readable by group or others',
    () => {
      const dir = tempDir();
      const keyFile = join(dir, 'keys');
      writeKeyFile(keyFile, SPEC, 0o644);
      const { warnings, warn } = collect();
      expect(loadKeyRing({ env: {}, keyFile, warn }).serialize()).toBe(SPEC);
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toContain('mode 0644');
      expect(warnings[0]).toContain(`chmod 600 ${resolve(keyFile)}`);
      expectNoSecrets(warnings[0]!, [KEY_A, KEY_B]);

      chmodSync(keyFile, 0o600);
      const quiet = collect();
      loadKeyRing({ env: {}, keyFile, warn: quiet.warn });
      expect(quiet.warnings).toEqual([]);
    },
  );

  it('throws a KeyRingError explaining TOKENWARDEN_KEYS when nothing is configured', () => {
    for (const env of [{}, { TOKENWARDEN_KEY_FILE: '  ' }]) {
      const error = thrown(KeyRingError, () => loadKeyRing({ env }));
      expect(error.code).toBe('key_ring_invalid');
      expect(error.message).toMatch(/shared database never gets a generated key/);
      expect(error.message).toContain('TOKENWARDEN_KEYS');
      expect(error.message).toContain(
        `node -e "console.log('k1:'+require('crypto').randomBytes(32).toString('base64'))"`,
      );
    }
  });

  it('does not generate a missing key file unless generateIfMissing', () => {
    const dir = tempDir();
    const keyFile = join(dir, 'keys');
    const error = thrown(KeyRingError, () => loadKeyRing({ env: {}, keyFile }));
    expect(error.message).toContain(`Key file ${resolve(keyFile)} does not exist`);
    expect(existsSync(keyFile)).toBe(false);
  });

  it('reports a malformed or unreadable key file with its path, not its content', () => {
    const dir = tempDir();
    const keyFile = join(dir, 'keys');
    writeKeyFile(keyFile, `a1:${KEY_A.toString('base64')}\n${KEY_B.toString('base64')}\n`);
    const error = thrown(KeyRingError, () => loadKeyRing({ env: {}, keyFile }));
    expect(error.message).toMatch(new RegExp(`^Key file .*keys: Key ring entry 2 is malformed`));
    expectNoSecrets(error.message, [KEY_A, KEY_B]);

    writeKeyFile(keyFile, '# only a comment\n');
    expect(() => loadKeyRing({ env: {}, keyFile, generateIfMissing: true })).toThrow(/empty/);

    const asDirectory = thrown(KeyRingError, () =>
      loadKeyRing({ env: {}, keyFile: dir, generateIfMissing: true }),
    );
    expect(asDirectory.message).toMatch(/could not be read \(EISDIR\)/);
  });

  it('concurrent processes generating the same missing file all end up with one ring', async () => {
    const dir = tempDir();
    const keyFile = join(dir, 'keys');
    const go = join(dir, 'go');
    const moduleUrl = pathToFileURL(
      fileURLToPath(new URL('../src/crypto/key-ring.ts', import.meta.url)),
    ).href;
    const child = `
      import { existsSync } from 'node:fs';
      const { loadKeyRing } = await import(${JSON.stringify(moduleUrl)});
      process.stdout.write('ready\\n');
      const deadline = Date.now() + 30_000;
      while (!existsSync(${JSON.stringify(go)})) if (Date.now() > deadline) process.exit(3);
      const warnings = [];
      const ring = loadKeyRing({ env: {}, keyFile: ${JSON.stringify(keyFile)},
        generateIfMissing: true, warn: (m) => warnings.push(m) });
      process.stdout.write(JSON.stringify({ ring: ring.serialize(), warnings }) + '\\n');
    `;
    const count = 8;
    let ready = 0;
    let release: () => void = () => {};
    const allReady = new Promise<void>((resolveReady) => (release = resolveReady));
    const procs: ChildProcess[] = [];
    const results = Array.from({ length: count }, () => {
      const proc = spawn(
        process.execPath,
        ['--import', 'tsx', '--input-type=module', '-e', child],
        {
          cwd: fileURLToPath(new URL('../../..', import.meta.url)),
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      procs.push(proc);
      let out = '';
      let err = '';
      proc.stdout.on('data', (chunk: Buffer) => {
        const before = out;
        out += chunk.toString();
        if (!before.includes('ready\n') && out.includes('ready\n') && ++ready === count) release();
      });
      proc.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
      return new Promise<{ ring: string; warnings: string[] }>((resolveChild, reject) => {
        proc.on('error', reject);
        proc.on('close', (code) => {
          if (code !== 0) return reject(new Error(`child exited ${code}: ${err}`));
          const line = out.split('\n').find((l) => l.startsWith('{'));
          if (line === undefined) return reject(new Error(`no result: ${out} ${err}`));
          resolveChild(JSON.parse(line) as { ring: string; warnings: string[] });
        });
      });
    });
    let outcomes: { ring: string; warnings: string[] }[];
    try {
      // A child that dies before it is ready fails the test instead of hanging it.
      await Promise.race([allReady, Promise.all(results)]);
      writeFileSync(go, '');
      outcomes = await Promise.all(results);
    } finally {
      for (const proc of procs) if (proc.exitCode === null) proc.kill();
    }

    const rings = new Set(outcomes.map((o) => o.ring));
    expect(rings.size).toBe(1);
    const onDisk = KeyRing.parse(readFileSync(keyFile, 'utf8')).serialize();
    expect([...rings][0]).toBe(onDisk);
    // Exactly one process generated the key (and warned about it); the others read its file.
    const generated = outcomes.filter((o) => o.warnings.some((w) => /generated a new/.test(w)));
    expect(generated).toHaveLength(1);
    expect(outcomes.flatMap((o) => o.warnings)).toHaveLength(1);
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    expect(readdirSync(dir).sort()).toEqual(['go', 'keys']);
  });
});

describe('writeKeyFile', () => {
  it('replaces a key file atomically with mode 0600 whatever the umask, or refuses to', () => {
    const dir = tempDir();
    const keyFile = join(dir, 'tokenwarden.keys');
    const first = KeyRing.generate('k1');
    const second = first.withNewActiveKey('k2');
    const umask = process.umask(0o022);
    try {
      expect(writeRingFile(keyFile, first, { replace: false, comment: 'first' })).toBe(true);
      // Never overwrites in create mode: another process's key wins.
      expect(writeRingFile(keyFile, second, { replace: false, comment: 'lost' })).toBe(false);
      expect(loadKeyRing({ env: {}, keyFile }).serialize()).toBe(first.serialize());
      chmodSync(keyFile, 0o644); // even a file someone loosened comes back 0600
      expect(writeRingFile(keyFile, second, { replace: true, comment: 'rotated' })).toBe(true);
    } finally {
      process.umask(umask);
    }
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    expect(readFileSync(keyFile, 'utf8')).toContain('# rotated\n');
    expect(loadKeyRing({ env: {}, keyFile }).serialize()).toBe(second.serialize());
    expect(readdirSync(dir)).toEqual(['tokenwarden.keys']); // no temp files left
  });
});

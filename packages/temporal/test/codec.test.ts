import { randomBytes } from 'node:crypto';
import { inspect } from 'node:util';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import {
  CodecKeyRing,
  CodecKeyRingError,
  ENCRYPTED_ENCODING,
  EncryptionCodec,
  KEY_ID_METADATA_KEY,
  PayloadDecryptionError,
} from '@tokenwarden/temporal';
import { describe, expect, it } from 'vitest';

const SECRET = 'xoxp-refresh-token-that-must-not-reach-history';
const text = (bytes: Uint8Array | null | undefined) => Buffer.from(bytes ?? []).toString('utf8');
const toPayload = (value: unknown) => defaultPayloadConverter.toPayload(value) as Payload;
const fromPayload = (payload: Payload) => defaultPayloadConverter.fromPayload(payload);

function ring(...ids: string[]): CodecKeyRing {
  return new CodecKeyRing(ids.map((id) => ({ id, key: randomBytes(32) })));
}

async function rejection(promise: Promise<unknown>): Promise<PayloadDecryptionError> {
  const error = await promise.then(
    () => {
      throw new Error('expected decode to fail');
    },
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(PayloadDecryptionError);
  return error as PayloadDecryptionError;
}

describe('EncryptionCodec', () => {
  it('round trip: values of every kind decode to what was encoded; nothing readable in between', async () => {
    const codec = new EncryptionCodec({ keys: ring('k1') });
    const values = [
      { refreshToken: SECRET, n: 1 },
      'plain string',
      42,
      null,
      undefined,
      new Uint8Array([0, 1, 2, 255]),
      { nested: { list: [1, 'two', { three: 3 }] } },
    ];
    const payloads = values.map(toPayload);
    const encoded = await codec.encode(payloads);

    expect(encoded).toHaveLength(values.length);
    for (const payload of encoded) {
      expect(text(payload.metadata?.encoding)).toBe(ENCRYPTED_ENCODING);
      expect(text(payload.metadata?.[KEY_ID_METADATA_KEY])).toBe('k1');
      // Neither the value nor its original encoding is visible.
      expect(text(payload.data)).not.toContain(SECRET);
      expect(text(payload.data)).not.toContain('json/plain');
    }
    // A random IV per payload: the same value never encrypts the same way twice.
    const [a, b] = await codec.encode([toPayload('same'), toPayload('same')]);
    expect(Buffer.from(a!.data!).equals(Buffer.from(b!.data!))).toBe(false);

    const decoded = await codec.decode(encoded);
    expect(decoded.map(fromPayload)).toEqual(values);
    for (const [i, payload] of decoded.entries()) {
      expect(text(payload.metadata?.encoding)).toBe(text(payloads[i]!.metadata?.encoding));
    }
    expect(await codec.encode([])).toEqual([]);
  });

  it('the text form of the key ring works the same as a ring', async () => {
    const keys = ring('k1');
    const encoded = await new EncryptionCodec({ keys }).encode([toPayload(SECRET)]);
    const other = new EncryptionCodec({ keys: keys.serialize() });
    expect((await other.decode(encoded)).map(fromPayload)).toEqual([SECRET]);
  });

  it('payloads written before the codec pass through decode unchanged', async () => {
    const codec = new EncryptionCodec({ keys: ring('k1') });
    const plain = toPayload({ id: 'conn_1' });
    expect(await codec.decode([plain])).toEqual([plain]);
  });

  it('unknown key id: fails naming the key id, never a key', async () => {
    const writer = new EncryptionCodec({ keys: ring('old') });
    const reader = new EncryptionCodec({ keys: ring('new') });
    const encoded = await writer.encode([toPayload(SECRET)]);
    const error = await rejection(reader.decode(encoded));
    expect(error.failure).toBe('unknown_key');
    expect(error.keyId).toBe('old');
    expect(error.message).toContain('"old"');
    expect(error.message).toContain('"new"');
    expect(error.message).not.toContain(SECRET);
  });

  it('a ring with another key under the same id fails authentication', async () => {
    const encoded = await new EncryptionCodec({ keys: ring('k1') }).encode([toPayload(SECRET)]);
    const error = await rejection(new EncryptionCodec({ keys: ring('k1') }).decode(encoded));
    expect(error.failure).toBe('authentication_failed');
  });

  it('tampered payload: any changed byte of the data fails authentication', async () => {
    const codec = new EncryptionCodec({ keys: ring('k1') });
    const [encoded] = await codec.encode([toPayload({ refreshToken: SECRET })]);
    const data = Buffer.from(encoded!.data!);
    // IV, ciphertext and tag: flip one bit in each region.
    for (const index of [0, 11, 12, Math.floor(data.length / 2), data.length - 1]) {
      const altered = Buffer.from(data);
      altered[index]! ^= 0x01;
      const error = await rejection(codec.decode([{ ...encoded, data: altered }]));
      expect(error.failure).toBe('authentication_failed');
      expect(error.message).not.toContain(SECRET);
    }
    // Cut short.
    const truncated = await rejection(
      codec.decode([{ ...encoded, data: data.subarray(0, data.length - 1) }]),
    );
    expect(truncated.failure).toBe('authentication_failed');
    const tooShort = await rejection(codec.decode([{ ...encoded, data: data.subarray(0, 20) }]));
    expect(tooShort.failure).toBe('malformed');
  });

  it('tampered metadata: a swapped key id fails authentication, a missing one is malformed', async () => {
    const keys = ring('k1', 'k2');
    const codec = new EncryptionCodec({ keys });
    const [encoded] = await codec.encode([toPayload(SECRET)]);
    const swapped = {
      ...encoded,
      metadata: { ...encoded!.metadata, [KEY_ID_METADATA_KEY]: Buffer.from('k2') },
    };
    expect((await rejection(codec.decode([swapped]))).failure).toBe('authentication_failed');

    const { [KEY_ID_METADATA_KEY]: _dropped, ...withoutKeyId } = encoded!.metadata!;
    expect((await rejection(codec.decode([{ ...encoded, metadata: withoutKeyId }]))).failure).toBe(
      'malformed',
    );
    const hostileId = {
      ...encoded,
      metadata: { ...encoded!.metadata, [KEY_ID_METADATA_KEY]: Buffer.from(SECRET) },
    };
    const hostile = await rejection(codec.decode([hostileId]));
    expect(hostile.failure).toBe('malformed');
    expect(hostile.message).not.toContain(SECRET);
  });

  it('key rotation: new payloads use the new key, old payloads still decode', async () => {
    const before = ring('k1');
    const oldCodec = new EncryptionCodec({ keys: before });
    const oldPayloads = await oldCodec.encode([toPayload('written before'), toPayload(7)]);

    const rotated = before.withActiveKey({ id: 'k2', key: randomBytes(32) });
    expect(rotated.keyIds).toEqual(['k2', 'k1']);
    const codec = new EncryptionCodec({ keys: rotated.serialize() });
    const [fresh] = await codec.encode([toPayload('written after')]);
    expect(text(fresh!.metadata?.[KEY_ID_METADATA_KEY])).toBe('k2');

    expect((await codec.decode([...oldPayloads, fresh!])).map(fromPayload)).toEqual([
      'written before',
      7,
      'written after',
    ]);
    // The old codec cannot read what the new key wrote: every process needs the new ring first.
    expect((await rejection(oldCodec.decode([fresh!]))).failure).toBe('unknown_key');
    // Once k1 is dropped (after the retention of every history it wrote), its payloads fail typed.
    const dropped = new EncryptionCodec({ keys: `k2:${rotated.key('k2')!.toString('base64')}` });
    expect((await rejection(dropped.decode(oldPayloads))).failure).toBe('unknown_key');
  });
});

describe('CodecKeyRing', () => {
  const key = randomBytes(32).toString('base64');

  it('parses the TOKENWARDEN_KEYS format, active key first', () => {
    const parsed = CodecKeyRing.parse(
      ` k2:${key} ,\n# comment\nk1:${randomBytes(32).toString('base64')}\n`,
    );
    expect(parsed.keyIds).toEqual(['k2', 'k1']);
    expect(parsed.activeKeyId).toBe('k2');
    expect(CodecKeyRing.parse(parsed.serialize()).keyIds).toEqual(['k2', 'k1']);
  });

  it('refuses malformed rings without echoing key material', () => {
    const bad = [
      '',
      '# only a comment',
      key, // a key without its id
      `bad id:${key}`,
      `k1:${key.slice(0, -4)}`,
      `k1:${randomBytes(16).toString('base64')}`,
      `k1:${key},k1:${key}`,
      'k1:not base64!',
    ];
    for (const spec of bad) {
      let error: unknown;
      try {
        CodecKeyRing.parse(spec);
      } catch (e) {
        error = e;
      }
      expect(error, spec).toBeInstanceOf(CodecKeyRingError);
      expect((error as Error).message).not.toContain(key);
      expect((error as Error).message).not.toContain(key.slice(0, 16));
    }
    expect(() => EncryptionCodec.fromEnv('TW_TEST_UNSET', {})).toThrow(/TW_TEST_UNSET is not set/);
    expect(() => EncryptionCodec.fromEnv('K', { K: `k1:${key}` })).not.toThrow();
  });

  it('never shows its keys through JSON or inspect', () => {
    const keys = CodecKeyRing.parse(`k1:${key}`);
    expect(JSON.stringify(keys)).toBe('{"activeKeyId":"k1","keyIds":["k1"]}');
    expect(inspect(keys)).not.toContain(key);
    expect(inspect(new EncryptionCodec({ keys }), { depth: 5 })).not.toContain(key);
  });
});

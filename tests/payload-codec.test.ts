import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ApplicationFailure, defaultPayloadConverter, type Payload } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../core/config.js';
import { failureConverter } from '../core/failure-converter.js';
import {
  ENCRYPTED_ENCODING,
  generatePayloadKey,
  isEncrypted,
  KEY_ID_METADATA,
  parsePayloadKeys,
  PayloadDecryptionError,
  PayloadEncryptionCodec,
  PayloadKeyError,
} from '../core/payload-codec.js';
import { LOCAL_KEYS_FILE, loadPayloadCodec, MISSING_KEYS } from '../runtime/payload-keys.js';
import { runCli } from './support/cli.js';
import { testLogger } from './support/stack.js';

const SECRET = 'Justification naming Jordan Secretperson';
const json = (value: unknown): Payload => defaultPayloadConverter.toPayload(value);
const valueOf = (payload: Payload): unknown => defaultPayloadConverter.fromPayload(payload);
const codecWith = (...entries: string[]) => new PayloadEncryptionCodec(parsePayloadKeys(entries.join(',')));
const metadataText = (payload: Payload, key: string) => Buffer.from(payload.metadata?.[key] ?? []).toString('utf8');

const k1 = generatePayloadKey('k1');
const k2 = generatePayloadKey('k2');

describe('payload encryption codec', () => {
  it('seals a payload whole under the newest key: binary/encrypted, key id in metadata, no plaintext, and back', async () => {
    const codec = codecWith(k2, k1);
    const original = json({ justification: SECRET });
    const [sealed] = await codec.encode([original]);
    expect(metadataText(sealed!, 'encoding')).toBe(ENCRYPTED_ENCODING);
    expect(metadataText(sealed!, KEY_ID_METADATA)).toBe('k2');
    expect(Object.keys(sealed!.metadata!).sort()).toEqual(['encoding', KEY_ID_METADATA]); // json/plain is inside
    expect(Buffer.from(sealed!.data!).includes(SECRET)).toBe(false);
    expect(Buffer.from(sealed!.data!).includes('json/plain')).toBe(false);
    const [opened] = await codec.decode([sealed!]);
    expect(metadataText(opened!, 'encoding')).toBe('json/plain');
    expect(valueOf(opened!)).toEqual({ justification: SECRET });
  });

  it('uses a fresh IV each time: the same value never gives the same ciphertext', async () => {
    const codec = codecWith(k1);
    const [a, b] = await codec.encode([json(SECRET), json(SECRET)]);
    expect(Buffer.from(a!.data!).equals(Buffer.from(b!.data!))).toBe(false);
  });

  it('after a rotation (new key first, old key kept), still decodes what the old key sealed, and seals with the new one', async () => {
    const [old] = await codecWith(k1).encode([json(SECRET)]);
    const rotated = codecWith(k2, k1);
    expect(valueOf((await rotated.decode([old!]))[0]!)).toBe(SECRET);
    const [fresh] = await rotated.encode([json(SECRET)]);
    expect(metadataText(fresh!, KEY_ID_METADATA)).toBe('k2');
  });

  it('a key that is no longer configured: a clear error naming the missing key id and the configured ones', async () => {
    const [old] = await codecWith(k1).encode([json(SECRET)]);
    const error = await codecWith(k2)
      .decode([json('plain'), old!])
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PayloadDecryptionError);
    expect((error as PayloadDecryptionError).index).toBe(1);
    expect((error as Error).message).toBe(
      'a payload is encrypted with key "k1", which is not configured (configured: k2); ' +
        'keep every key that may still be in a history in TEMPORAL_PAYLOAD_KEYS',
    );
  });

  it('the wrong key under the right id, or altered ciphertext: a clear error, never garbage', async () => {
    const [sealed] = await codecWith(k1).encode([json(SECRET)]);
    const impostor = codecWith(generatePayloadKey('k1'));
    await expect(impostor.decode([sealed!])).rejects.toThrow(
      'a payload encrypted with key "k1" does not decrypt: the key configured as "k1" is not the one it was encrypted with, or the payload was altered',
    );
    const altered = Buffer.from(sealed!.data!);
    altered[20] = altered[20]! ^ 1;
    await expect(codecWith(k1).decode([{ ...sealed!, data: altered }])).rejects.toThrow(/does not decrypt/);
    // The key id is bound to the ciphertext: relabelling it under another configured key fails too.
    const relabelled = { ...sealed!, metadata: { ...sealed!.metadata, [KEY_ID_METADATA]: Buffer.from('k2') } };
    await expect(codecWith(k1, k2).decode([relabelled])).rejects.toThrow(/key "k2" does not decrypt/);
  });

  it('passes a payload that is not encrypted through unchanged (histories from before encryption)', async () => {
    const plain = json({ comment: SECRET });
    const [passed] = await codecWith(k1).decode([plain]);
    expect(passed).toBe(plain);
  });

  it('with encryption off, writes plaintext but still decrypts with the keys it has', async () => {
    const [sealed] = await codecWith(k1).encode([json(SECRET)]);
    const off = new PayloadEncryptionCodec(parsePayloadKeys(k1), { encrypt: false });
    expect(off.encryptingKeyId).toBeUndefined();
    const plain = json(SECRET);
    expect((await off.encode([plain]))[0]).toBe(plain);
    expect(valueOf((await off.decode([sealed!]))[0]!)).toBe(SECRET);
  });

  it('the failure converter moves error messages and stack traces into a payload the codec then seals', async () => {
    const failure = failureConverter.errorToFailure(
      ApplicationFailure.create({ message: SECRET, type: 'Refused' }),
      defaultPayloadConverter,
    );
    expect(failure.message).toBe('Encoded failure');
    expect(failure.applicationFailureInfo?.type).toBe('Refused'); // the type stays readable, for error mapping
    const [sealed] = await codecWith(k1).encode([failure.encodedAttributes!]);
    expect(isEncrypted(sealed!)).toBe(true);
    expect(Buffer.from(sealed!.data!).includes(SECRET)).toBe(false);
    const [opened] = await codecWith(k1).decode([sealed!]);
    const restored = failureConverter.failureToError({ ...failure, encodedAttributes: opened }, defaultPayloadConverter);
    expect(restored.message).toBe(SECRET);
  });
});

describe('payload keys', () => {
  it('reads comma- or line-separated entries, newest first, with comment lines', () => {
    const keys = parsePayloadKeys(`# rotated 2026-01\n${k2}\n${k1}, ${generatePayloadKey('k0')}\n`);
    expect(keys.map((k) => k.id)).toEqual(['k2', 'k1', 'k0']);
    expect(keys.every((k) => k.key.length === 32)).toBe(true);
  });

  const material = k1.split(':')[1]!;
  it.each([
    ['', 'no keys listed'],
    ['k1', 'entry 1 is not `id:base64key`'],
    [`bad id:${material}`, 'entry 1: the key id must be'],
    [`k1:${Buffer.alloc(16, 7).toString('base64')}`, 'entry 1 (key "k1"): the key must be 32 bytes'],
    [`k1:${material.slice(0, -1)}`, 'entry 1 (key "k1"): the key must be 32 bytes'],
    [`${k1},k1:${material}`, 'entry 2: key id "k1" is listed twice'],
  ])('refuses %j with a message naming the entry and never the key', (text, message) => {
    expect(() => parsePayloadKeys(text)).toThrow(PayloadKeyError);
    expect(() => parsePayloadKeys(text)).toThrow(message);
    try {
      parsePayloadKeys(text);
    } catch (error) {
      expect((error as Error).message).not.toContain(material.slice(0, 12));
    }
  });

  it('config: a bad TEMPORAL_PAYLOAD_KEYS, or both ways of giving keys, stop start-up naming the variable', () => {
    expect(() => loadConfig({ TEMPORAL_PAYLOAD_KEYS: 'k1:short' })).toThrow(ConfigError);
    expect(() => loadConfig({ TEMPORAL_PAYLOAD_KEYS: 'k1:short' })).toThrow(/TEMPORAL_PAYLOAD_KEYS: entry 1 \(key "k1"\)/);
    expect(() => loadConfig({ TEMPORAL_PAYLOAD_KEYS: k1, TEMPORAL_PAYLOAD_KEYS_FILE: '/run/secrets/keys' })).toThrow(
      /TEMPORAL_PAYLOAD_KEYS_FILE: set TEMPORAL_PAYLOAD_KEYS or TEMPORAL_PAYLOAD_KEYS_FILE, not both/,
    );
    expect(() => loadConfig({ TEMPORAL_PAYLOAD_ENCRYPTION: 'maybe' })).toThrow(/TEMPORAL_PAYLOAD_ENCRYPTION/);
    expect(() => loadConfig({ CODEC_CORS_ORIGINS: 'http://ui.example/path' })).toThrow(/CODEC_CORS_ORIGINS/);
    expect(loadConfig({ CODEC_CORS_ORIGINS: 'http://127.0.0.1:8233, https://ui.example' }).CODEC_CORS_ORIGINS).toEqual([
      'http://127.0.0.1:8233',
      'https://ui.example',
    ]);
    expect(loadConfig({}).TEMPORAL_PAYLOAD_ENCRYPTION).toBe('on');
  });
});

describe('loading the codec at start', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'tenure-keys-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  const settings = (env: Record<string, string> = {}) => loadConfig(env);

  it('production without keys: one sentence saying what to set', async () => {
    await expect(loadPayloadCodec(settings(), testLogger, 'refuse')).rejects.toThrow(MISSING_KEYS);
  });

  it('production with encryption explicitly off: starts, writes plaintext', async () => {
    const codec = await loadPayloadCodec(settings({ TEMPORAL_PAYLOAD_ENCRYPTION: 'off' }), testLogger, 'refuse');
    const plain = json(SECRET);
    expect((await codec.encode([plain]))[0]).toBe(plain);
  });

  it('reads keys from TEMPORAL_PAYLOAD_KEYS_FILE, and names the file when it is wrong', async () => {
    const file = path.join(dir, 'keys');
    await writeFile(file, `# mounted secret\n${k2}\n${k1}\n`);
    const codec = await loadPayloadCodec(settings({ TEMPORAL_PAYLOAD_KEYS_FILE: file }), testLogger, 'refuse');
    expect(codec.encryptingKeyId).toBe('k2');
    await writeFile(file, 'k1:nope\n');
    await expect(loadPayloadCodec(settings({ TEMPORAL_PAYLOAD_KEYS_FILE: file }), testLogger, 'refuse')).rejects.toThrow(
      `TEMPORAL_PAYLOAD_KEYS_FILE ${file}: entry 1 (key "k1"): the key must be 32 bytes`,
    );
    await expect(
      loadPayloadCodec(settings({ TEMPORAL_PAYLOAD_KEYS_FILE: path.join(dir, 'absent') }), testLogger, 'refuse'),
    ).rejects.toThrow(/TEMPORAL_PAYLOAD_KEYS_FILE .*absent cannot be read/);
  });

  it('npm start: generates a key into the data folder once (mode 0600) and reads the same key on the next start', async () => {
    const dataDir = path.join(dir, 'data');
    const first = await loadPayloadCodec(settings(), testLogger, { keepIn: dataDir });
    const [sealed] = await first.encode([json(SECRET)]);
    const file = path.join(dataDir, LOCAL_KEYS_FILE);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const content = await readFile(file, 'utf8');
    const second = await loadPayloadCodec(settings(), testLogger, { keepIn: dataDir });
    expect(await readFile(file, 'utf8')).toBe(content);
    expect(valueOf((await second.decode([sealed!]))[0]!)).toBe(SECRET);
  });

  it('`tenure api` without keys exits 1 with that sentence, before connecting to anything', async () => {
    const result = await runCli(['api'], {
      DATABASE_URL: 'postgres://nobody@127.0.0.1:1/nothing',
      TEMPORAL_ADDRESS: '127.0.0.1:1',
      LOG_LEVEL: 'silent',
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`tenure: could not start: ${MISSING_KEYS}\n`);
  });
});

import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { METADATA_ENCODING_KEY, type DataConverter, type Payload, type PayloadCodec } from '@temporalio/common';
import proto from '@temporalio/proto';

/**
 * Workflow data (inputs, results, Update arguments, activity inputs, queries, failure messages)
 * leaves Tenure only as AES-256-GCM ciphertext, so whoever can read the Temporal namespace sees
 * ids and timestamps, never a profile, a justification or a comment.
 */
export const ENCRYPTED_ENCODING = 'binary/encrypted';
/** Metadata naming the key a payload was encrypted with, so a rotated key set still finds it. */
export const KEY_ID_METADATA = 'encryption-key-id';

// A CommonJS module whose named exports Node's ESM loader cannot see: take them from the default.
const { Payload: PayloadMessage } = proto.temporal.api.common.v1;
const ALGORITHM = 'aes-256-gcm';
const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export interface PayloadKey {
  id: string;
  /** 32 bytes. */
  key: Buffer;
}

/** A key list that cannot be used; the message names the entry, never the key material. */
export class PayloadKeyError extends Error {
  override name = 'PayloadKeyError';
}

/** A payload this process cannot decrypt: a key it does not have, the wrong key, or altered data. */
export class PayloadDecryptionError extends Error {
  override name = 'PayloadDecryptionError';
  constructor(
    message: string,
    /** Position of the payload in the batch that was decoded. */
    readonly index: number,
  ) {
    super(message);
  }
}

/**
 * Parses `id:base64key` entries separated by commas or new lines (`#` starts a comment line).
 * The first entry is the newest: it encrypts; every entry decrypts.
 */
export function parsePayloadKeys(text: string): PayloadKey[] {
  const entries = text
    .split(/\r?\n/)
    .filter((line) => !line.trim().startsWith('#'))
    .flatMap((line) => line.split(','))
    .map((entry) => entry.trim())
    .filter(Boolean);
  if (entries.length === 0) throw new PayloadKeyError('no keys listed; expected `id:base64key`, newest first');
  const keys: PayloadKey[] = [];
  entries.forEach((entry, i) => {
    const where = `entry ${i + 1}`;
    const colon = entry.indexOf(':');
    if (colon < 0) throw new PayloadKeyError(`${where} is not \`id:base64key\``);
    const id = entry.slice(0, colon).trim();
    const encoded = entry.slice(colon + 1).trim();
    if (!KEY_ID.test(id)) throw new PayloadKeyError(`${where}: the key id must be 1-64 letters, digits, '.', '_' or '-'`);
    const key = Buffer.from(encoded, 'base64');
    if (key.toString('base64') !== encoded || key.length !== KEY_BYTES) {
      throw new PayloadKeyError(`${where} (key "${id}"): the key must be ${KEY_BYTES} bytes in standard base64 (44 characters)`);
    }
    if (keys.some((k) => k.id === id)) throw new PayloadKeyError(`${where}: key id "${id}" is listed twice`);
    keys.push({ id, key });
  });
  return keys;
}

/** A new key as one `id:base64key` entry, e.g. for the embedded default's data folder. */
export function generatePayloadKey(id: string): string {
  if (!KEY_ID.test(id)) throw new PayloadKeyError(`the key id must be 1-64 letters, digits, '.', '_' or '-'`);
  return `${id}:${randomBytes(KEY_BYTES).toString('base64')}`;
}

const text = (bytes: Uint8Array | null | undefined) => (bytes ? Buffer.from(bytes).toString('utf8') : undefined);

/**
 * The codec every Tenure client and worker runs with. Each payload is sealed whole (its metadata
 * and data, as protobuf) under the newest key, with a fresh 96-bit IV and the key id as
 * associated data. Decoding picks the key by the id in the metadata, so keys can rotate while old
 * histories stay readable; a payload that is not encrypted (written before encryption was on, or
 * with TEMPORAL_PAYLOAD_ENCRYPTION=off) passes through unchanged.
 */
export class PayloadEncryptionCodec implements PayloadCodec {
  readonly #keys: ReadonlyMap<string, Buffer>;
  readonly #encryptWith: PayloadKey | undefined;

  /** `keys` newest first; with `encrypt: false` nothing new is encrypted, and the keys only decrypt. */
  constructor(keys: readonly PayloadKey[], options: { encrypt: boolean } = { encrypt: true }) {
    if (options.encrypt && keys.length === 0) throw new PayloadKeyError('encryption needs at least one key');
    this.#keys = new Map(keys.map((k) => [k.id, k.key]));
    this.#encryptWith = options.encrypt ? keys[0] : undefined;
  }

  /** The id new payloads are encrypted with; undefined when encryption is off. */
  get encryptingKeyId(): string | undefined {
    return this.#encryptWith?.id;
  }

  encode(payloads: Payload[]): Promise<Payload[]> {
    return settle(() => {
      const current = this.#encryptWith;
      return current ? payloads.map((payload) => seal(payload, current)) : payloads;
    });
  }

  /** Rejects with a PayloadDecryptionError for a payload it cannot decrypt. */
  decode(payloads: Payload[]): Promise<Payload[]> {
    return settle(() => payloads.map((payload, index) => (isEncrypted(payload) ? this.#decrypt(payload, index) : payload)));
  }

  #decrypt(payload: Payload, index: number): Payload {
    const keyId = text(payload.metadata?.[KEY_ID_METADATA]);
    if (!keyId) throw new PayloadDecryptionError(`an encrypted payload has no ${KEY_ID_METADATA} metadata`, index);
    const key = this.#keys.get(keyId);
    if (!key) {
      const known = [...this.#keys.keys()];
      throw new PayloadDecryptionError(
        `a payload is encrypted with key "${keyId}", which is not configured (configured: ${known.length ? known.join(', ') : 'none'}); ` +
          'keep every key that may still be in a history in TEMPORAL_PAYLOAD_KEYS',
        index,
      );
    }
    const data = payload.data ?? new Uint8Array();
    if (data.length < IV_BYTES + TAG_BYTES) {
      throw new PayloadDecryptionError(`a payload encrypted with key "${keyId}" is too short to be one of ours`, index);
    }
    try {
      const decipher = createDecipheriv(ALGORITHM, key, data.subarray(0, IV_BYTES));
      decipher.setAAD(Buffer.from(keyId, 'utf8'));
      decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
      const plain = Buffer.concat([decipher.update(data.subarray(IV_BYTES, data.length - TAG_BYTES)), decipher.final()]);
      return PayloadMessage.decode(plain);
    } catch {
      throw new PayloadDecryptionError(
        `a payload encrypted with key "${keyId}" does not decrypt: the key configured as "${keyId}" is not the one it was ` +
          'encrypted with, or the payload was altered',
        index,
      );
    }
  }
}

/** The codec interface is async; the work is synchronous (a throw becomes the rejection). */
const settle = <T>(work: () => T): Promise<T> => new Promise((resolve) => resolve(work()));

function seal(payload: Payload, current: PayloadKey): Payload {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv(ALGORITHM, current.key, iv);
  cipher.setAAD(Buffer.from(current.id, 'utf8'));
  const sealed = Buffer.concat([cipher.update(PayloadMessage.encode(payload).finish()), cipher.final()]);
  return {
    metadata: {
      [METADATA_ENCODING_KEY]: Buffer.from(ENCRYPTED_ENCODING),
      [KEY_ID_METADATA]: Buffer.from(current.id),
    },
    data: Buffer.concat([iv, sealed, cipher.getAuthTag()]),
  };
}

export function isEncrypted(payload: Payload): boolean {
  return text(payload.metadata?.[METADATA_ENCODING_KEY]) === ENCRYPTED_ENCODING;
}

/** The failure converter module (core/failure-converter), in source (.ts) or compiled (.js) form. */
export function failureConverterPath(): string {
  const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
  return fileURLToPath(new URL(`./failure-converter${ext}`, import.meta.url));
}

/**
 * The one data converter of every Tenure client, worker and workflow bundle: the payload codec,
 * and failure messages moved into payloads so the codec covers them too.
 */
export function tenureDataConverter(codec: PayloadCodec): DataConverter {
  return { payloadCodecs: [codec], failureConverterPath: failureConverterPath() };
}

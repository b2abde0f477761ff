import type { Payload } from '@temporalio/common';
import { MSP_CHAIN } from '../core/audit/chain.js';
import type { ActionContext } from '../core/audit/context.js';
import { badRequest } from '../core/errors.js';
import { isEncrypted, KEY_ID_METADATA, PayloadDecryptionError, type PayloadEncryptionCodec } from '../core/payload-codec.js';
import { appendActionEvent as audit } from '../db/audit.js';
import type { Pool } from '../db/pool.js';
import { inScope, mspScope } from '../db/scope.js';

/** The remote codec endpoint's side of the payload codec, for operators' Temporal UI and CLI. */
export interface CodecDeps {
  pool: Pool;
  codec: PayloadEncryptionCodec;
  /** The Temporal namespace whose payloads these are, named in the audit trail. */
  namespace: string;
}

const keyIdOf = (payload: Payload) => Buffer.from(payload.metadata?.[KEY_ID_METADATA] ?? []).toString('utf8');

/**
 * Decrypts what Tenure encrypted (anything else passes through). Reading workflow data is reading
 * tenants' personal data, so each call that decrypted something is recorded on the MSP chain
 * before the plaintext is returned; a payload that does not decrypt is the caller's 400.
 */
export async function decodePayloads(deps: CodecDeps, ctx: ActionContext, payloads: Payload[]): Promise<Payload[]> {
  let decoded: Payload[];
  try {
    decoded = await deps.codec.decode(payloads);
  } catch (error) {
    if (!(error instanceof PayloadDecryptionError)) throw error;
    throw badRequest('A payload cannot be decoded.', [{ path: `body.payloads.${error.index}`, message: error.message }]);
  }
  const encrypted = payloads.filter(isEncrypted);
  if (encrypted.length > 0) {
    await inScope(deps.pool, mspScope, (client) =>
      audit(client, ctx, {
        tenantId: MSP_CHAIN,
        action: 'temporal.payloads_decoded',
        target: { type: 'temporal_namespace', id: deps.namespace },
        payload: { payloads: payloads.length, decrypted: encrypted.length, keyIds: [...new Set(encrypted.map(keyIdOf))].sort() },
      }),
    );
  }
  return decoded;
}

/**
 * Encrypts payloads under the current key, as a worker would (the CLI uses it to send an input
 * through a codec). Recorded like a decode: ciphertext made outside Tenure is worth knowing of.
 */
export async function encodePayloads(deps: CodecDeps, ctx: ActionContext, payloads: Payload[]): Promise<Payload[]> {
  const encoded = await deps.codec.encode(payloads);
  const keyId = deps.codec.encryptingKeyId;
  if (keyId && payloads.length > 0) {
    await inScope(deps.pool, mspScope, (client) =>
      audit(client, ctx, {
        tenantId: MSP_CHAIN,
        action: 'temporal.payloads_encoded',
        target: { type: 'temporal_namespace', id: deps.namespace },
        payload: { payloads: payloads.length, keyId },
      }),
    );
  }
  return encoded;
}

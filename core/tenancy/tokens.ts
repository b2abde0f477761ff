import { createHash, randomBytes } from 'node:crypto';

/** Every Tenure API token starts with it, so the API can tell one from an OIDC token at a glance. */
export const API_TOKEN_PREFIX = 'tnr_';

/** A new API token: the secret is shown once; only its SHA-256 is stored. */
export function generateApiToken(): { token: string; hash: Buffer; prefix: string } {
  const token = API_TOKEN_PREFIX + randomBytes(32).toString('base64url');
  return { token, hash: hashApiToken(token), prefix: token.slice(0, API_TOKEN_PREFIX.length + 6) };
}

export function hashApiToken(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

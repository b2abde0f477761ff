import { z } from 'zod';

/**
 * A keyset list cursor: base64url of the last row's creation time (6 bytes of milliseconds, before
 * the year 9915) and its uuid (16 bytes). Every string the pattern admits decodes to a position,
 * so the pattern is the whole rule.
 */
export const KEYSET_CURSOR = /^[A-Za-z0-4][A-Za-z0-9_-]{28}[AQgw]$/;

export function encodeKeysetCursor(createdAt: Date, id: string): string {
  const bytes = Buffer.alloc(22);
  bytes.writeUIntBE(createdAt.getTime(), 0, 6);
  Buffer.from(id.replaceAll('-', ''), 'hex').copy(bytes, 6);
  return bytes.toString('base64url');
}

export function decodeKeysetCursor(cursor: string): { createdAt: string; id: string } | undefined {
  if (!KEYSET_CURSOR.test(cursor)) return undefined;
  const bytes = Buffer.from(cursor, 'base64url');
  const hex = bytes.subarray(6).toString('hex');
  const id = [hex.slice(0, 8), hex.slice(8, 12), hex.slice(12, 16), hex.slice(16, 20), hex.slice(20)].join('-');
  return { createdAt: new Date(bytes.readUIntBE(0, 6)).toISOString(), id };
}

/** The `cursor` query parameter of a keyset-paged list. */
export const CursorParam = z
  .string()
  .regex(KEYSET_CURSOR, 'not a cursor returned by this endpoint')
  .optional()
  .meta({ description: 'The `nextCursor` of the previous page.' });

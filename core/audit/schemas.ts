import { z } from 'zod';
import { MSP_CHAIN } from './chain.js';
import { UtcDateTime } from '../text.js';

/** A tenant's id (lower-cased, as stored), or `msp` for the MSP's own chain. */
export const ChainId = z
  .union([z.literal(MSP_CHAIN), z.uuid().toLowerCase()])
  .meta({ description: 'The tenant id whose chain to read, or `msp` for the MSP-wide chain.' });

/** Cursors are opaque to callers; inside, the base64url of the last seq returned. */
export function encodeCursor(seq: number): string {
  return Buffer.from(String(seq), 'utf8').toString('base64url');
}

/** The seq a cursor stands for, or undefined when it is not one we could have issued. */
export function decodeCursor(cursor: string): number | undefined {
  if (!/^[A-Za-z0-9_-]{1,24}$/.test(cursor)) return undefined;
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  if (!/^[1-9][0-9]{0,14}$/.test(text)) return undefined;
  const seq = Number(text);
  // Re-encoding must give the same string, so one position has exactly one cursor.
  return Number.isSafeInteger(seq) && encodeCursor(seq) === cursor ? seq : undefined;
}

/*
 * Exactly the strings decodeCursor accepts, as a pattern (base64url of 1-15 decimal digits, no
 * leading zero), so the document states the whole rule. Per 3 digits: a pair for the first digit,
 * one character for the second and one for the third; a shorter tail ends the string.
 */
const pair = '(?:[MN][DTjz]|O[DT])';
const firstPair = '(?:M[Tjz]|N[DTjz]|O[DT])';
const triple = `${pair}[AEIMQUYcgk][w-z0-5]`;
const tail = `(?:[MN][AQgw]|O[AQ]|${pair}[AEIMQUYcgk])`;
const firstTail = `(?:M[Qgw]|N[AQgw]|O[AQ]|${firstPair}[AEIMQUYcgk])`;
export const AUDIT_CURSOR = new RegExp(
  `^(?:${firstPair}[AEIMQUYcgk][w-z0-5](?:(?:${triple}){0,3}${tail}?|(?:${triple}){4})|${firstTail})$`,
);

const Cursor = z
  .string()
  .meta({ pattern: AUDIT_CURSOR.source })
  .transform((value, ctx) => {
    const seq = decodeCursor(value);
    if (seq === undefined) {
      ctx.addIssue({ code: 'custom', message: 'not a cursor returned by this API' });
      return z.NEVER;
    }
    return seq;
  })
  .meta({ description: 'The `nextCursor` of the previous page.' });

const isoTime = UtcDateTime;
const term = z.string().min(1).max(500);

const filterShape = {
  from: isoTime.optional().meta({ description: 'Events that occurred at or after this time (ISO 8601).' }),
  to: isoTime.optional().meta({ description: 'Events that occurred before this time (exclusive, ISO 8601).' }),
  action: term.optional().meta({ description: 'Exact action, e.g. `tenant.created`.' }),
  actorId: term.optional(),
  targetId: term.optional(),
  workflowId: term.optional(),
};

/** `from` must come before `to`; reported on `to`, the bound most likely mistyped. */
function timeWindow(value: { from?: string | undefined; to?: string | undefined }, ctx: z.core.$RefinementCtx): void {
  if (value.from && value.to && Date.parse(value.from) >= Date.parse(value.to)) {
    ctx.addIssue({ code: 'custom', path: ['to'], message: 'must be later than `from`' });
  }
}

export const AuditListQuery = z
  .strictObject({
    ...filterShape,
    limit: z.coerce.number().int().min(1).max(1000).default(100),
    cursor: Cursor.optional(),
  })
  .superRefine(timeWindow);
export type AuditListQuery = z.output<typeof AuditListQuery>;

export const ExportFormat = z.enum(['ndjson', 'csv']);
export type ExportFormat = z.infer<typeof ExportFormat>;

export const AuditExportQuery = z
  .strictObject({
    ...filterShape,
    format: ExportFormat.default('ndjson').meta({ description: '`ndjson` (one event per line, verifiable offline) or `csv`.' }),
  })
  .superRefine(timeWindow);
export type AuditExportQuery = z.output<typeof AuditExportQuery>;

/** The filters both queries share, as the data-access layer takes them. */
export type AuditFilterQuery = Pick<AuditListQuery, keyof typeof filterShape>;

const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/);

/**
 * One audit event exactly as exported. `hash` is SHA-256 over the RFC 8785 canonical JSON of
 * every other field, and `prevHash` is the previous event's `hash` (64 zeros for seq 1).
 */
export const AuditEventView = z
  .object({
    tenantId: z.string().min(1),
    seq: z.number().int().positive(),
    eventId: z.guid(),
    occurredAt: z.iso.datetime(),
    actor: z.object({ id: z.string(), type: z.enum(['user', 'service', 'system']) }),
    action: z.string(),
    target: z.object({ type: z.string(), id: z.string() }).nullable(),
    authority: z.record(z.string(), z.unknown()),
    workflowId: z.string().nullable(),
    runId: z.string().nullable(),
    payload: z.record(z.string(), z.unknown()),
    prevHash: sha256Hex,
    hash: sha256Hex,
  })
  .meta({ id: 'AuditEvent' });

export const AuditEventPage = z
  .object({
    events: z.array(AuditEventView),
    nextCursor: z.string().nullable().meta({ description: 'Pass as `cursor` for the next page; null on the last page.' }),
  })
  .meta({ id: 'AuditEventPage' });
export type AuditEventPage = z.infer<typeof AuditEventPage>;

export const ChainVerification = z
  .object({
    intact: z.boolean(),
    checked: z.number().int().nonnegative().meta({ description: 'Events that verified before the first break.' }),
    firstBadSeq: z.number().int().positive().nullable(),
    reason: z.string().nullable(),
    headSeq: z.number().int().nonnegative().meta({ description: 'The seq of the chain head when verification started.' }),
  })
  .meta({ id: 'ChainVerification' });
export type ChainVerification = z.infer<typeof ChainVerification>;

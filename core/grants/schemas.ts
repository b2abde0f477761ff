import { z } from 'zod';
import { CursorParam, decodeKeysetCursor, encodeKeysetCursor } from '../cursor.js';
import { DateTime, nonBlank, UtcDateTime } from '../text.js';
import { END_REASONS, GRANT_STATUSES } from './contract.js';

export const RequestGrantBody = z
  .strictObject({
    /** The tenant directory user who receives the role. */
    subjectId: z.string().min(1).max(200),
    role: z.string().min(1).max(100),
    /** How long the access lasts once it starts; or give `endAt`. */
    durationMinutes: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER).optional(),
    /** When the access starts; now when omitted. */
    startAt: DateTime.optional(),
    /** When the access ends (a window with `startAt`); or give `durationMinutes`. */
    endAt: DateTime.optional(),
    justification: nonBlank(2000).optional(),
    ticket: nonBlank(200).optional(),
  })
  .superRefine((body, ctx) => {
    if ((body.durationMinutes === undefined) === (body.endAt === undefined)) {
      ctx.addIssue({ code: 'custom', path: ['durationMinutes'], message: 'give exactly one of durationMinutes and endAt' });
    }
  })
  // What the refinement enforces, stated in the document.
  .meta({ id: 'RequestGrant', oneOf: [{ required: ['durationMinutes'] }, { required: ['endAt'] }] });
export type RequestGrantBody = z.infer<typeof RequestGrantBody>;

export const DecisionBody = z.strictObject({ comment: z.string().trim().max(2000).optional() }).meta({ id: 'GrantDecision' });
export const ExtendBody = z
  .strictObject({
    additionalMinutes: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
    justification: z.string().trim().max(2000).optional(),
  })
  .meta({ id: 'ExtendGrant' });

/** A grant list cursor (core/cursor.ts) naming the last grant of a page. */
export const encodeGrantCursor = encodeKeysetCursor;

export function decodeGrantCursor(cursor: string): { createdAt: string; grantId: string } | undefined {
  const position = decodeKeysetCursor(cursor);
  return position && { createdAt: position.createdAt, grantId: position.id };
}

export const GrantListQuery = z.strictObject({
  status: z.enum(GRANT_STATUSES).optional(),
  subjectId: z.string().min(1).max(200).optional(),
  role: z.string().min(1).max(100).optional(),
  /** Grants this actor requested (e.g. the console's "My grants"). */
  requesterId: z.uuid().optional(),
  expiringBefore: UtcDateTime.optional(),
  limit: z.coerce.number().int().min(1).max(500).default(100),
  cursor: CursorParam,
});

const Approval = z.object({ approverId: z.string(), approvalId: z.string(), at: z.string(), comment: z.string().nullable() });
export const GrantViewSchema = z
  .object({
    grantId: z.uuid(),
    tenantId: z.uuid(),
    workflowId: z.string(),
    subjectId: z.string(),
    role: z.string(),
    requesterId: z.string(),
    status: z.enum(GRANT_STATUSES),
    endReason: z.enum(END_REASONS).nullable(),
    justification: z.string().nullable(),
    ticket: z.string().nullable(),
    policyVersion: z.number(),
    approvalsRequired: z.number(),
    approvals: z.array(Approval),
    deniedBy: z.string().nullable(),
    startAt: z.string(),
    endAt: z.string(),
    activatedAt: z.string().nullable(),
    endedAt: z.string().nullable(),
    revocationVerifiedAt: z.string().nullable(),
    pendingExtension: z
      .object({
        extensionId: z.string(),
        requestedBy: z.string(),
        additionalSeconds: z.number(),
        justification: z.string().nullable(),
        approvals: z.array(Approval),
      })
      .nullable(),
    version: z.number(),
  })
  .meta({ id: 'Grant' });

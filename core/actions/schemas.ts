import { z } from 'zod';
import { CursorParam } from '../cursor.js';
import { nonBlank } from '../text.js';
import { ACTION_STATUSES, ACTION_TYPES } from './contract.js';

export const RequestActionBody = z
  .strictObject({
    action: z.enum(ACTION_TYPES),
    /** The tenant directory user the action is done to. */
    subjectId: z.string().min(1).max(200),
    justification: nonBlank(2000).optional(),
    ticket: nonBlank(200).optional(),
  })
  .meta({ id: 'RequestAction' });
export type RequestActionBody = z.infer<typeof RequestActionBody>;

export const ActionDecisionBody = z.strictObject({ comment: z.string().trim().max(2000).optional() }).meta({ id: 'ActionDecision' });

export const ActionListQuery = z.strictObject({
  status: z.enum(ACTION_STATUSES).optional(),
  action: z.enum(ACTION_TYPES).optional(),
  subjectId: z.string().min(1).max(200).optional(),
  limit: z.coerce.number().int().min(1).max(500).default(100),
  cursor: CursorParam,
});

const AccountState = z
  .object({
    status: z.enum(['active', 'disabled', 'deleted']),
    locked: z.boolean().nullable(),
    mfaFactors: z.number().int().nullable(),
    passwordResetRequired: z.boolean().nullable(),
    liveSessions: z.number().int().nullable(),
  })
  .meta({ id: 'AccountState', description: 'The account as read from the target; null where the target cannot tell.' });

export const ActionViewSchema = z
  .object({
    actionId: z.uuid(),
    tenantId: z.uuid(),
    workflowId: z.string(),
    action: z.enum(ACTION_TYPES),
    subjectId: z.string(),
    requesterId: z.string(),
    status: z.enum(ACTION_STATUSES),
    justification: z.string().nullable(),
    ticket: z.string().nullable(),
    policyVersion: z.number(),
    approvalsRequired: z.number(),
    approvals: z.array(z.object({ approverId: z.string(), approvalId: z.string(), at: z.string(), comment: z.string().nullable() })),
    decidedBy: z.string().nullable(),
    requestedAt: z.string(),
    approvalExpiresAt: z.string().nullable(),
    executedAt: z.string().nullable(),
    verifiedAt: z.string().nullable(),
    before: AccountState.nullable(),
    after: AccountState.nullable(),
    outcome: z.string().nullable(),
    version: z.number(),
  })
  .meta({ id: 'RemoteAction' });

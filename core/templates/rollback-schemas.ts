import { z } from 'zod';
import { Uuid } from '../tenancy/schemas.js';
import { ROLLBACK_STATUSES } from './rollback.js';

/** The rollback endpoints' answers (api/routes/template-rollbacks.ts), also the OpenAPI document. */

export const RollbackStartedView = z
  .object({
    rolloutId: Uuid,
    tenantId: Uuid,
    workflowId: z.string(),
    existing: z.boolean().describe('A rollback of this apply had already been requested: this answers that one; nothing starts again.'),
  })
  .meta({ id: 'TemplateRollbackStarted' });

export const RolloutRollbackStartedView = z
  .object({
    rolloutId: Uuid,
    workflowId: z.string(),
    existing: z.boolean().describe('The rollout’s rollback had already been requested: this answers that one.'),
  })
  .meta({ id: 'RolloutRollbackStarted' });

const Conflict = z.object({
  path: z.string(),
  snapshot: z.unknown().describe('What the snapshot holds; null for absent.'),
  applied: z.unknown().describe('What the apply left there.'),
  current: z.unknown().describe('What the tenant holds now, left as it is.'),
  reason: z.string(),
});

export const TemplateRollbackView = z
  .object({
    rolloutId: Uuid,
    tenantId: Uuid,
    workflowId: z.string(),
    snapshotId: Uuid,
    templateId: Uuid,
    version: z.number().int(),
    status: z.enum(ROLLBACK_STATUSES),
    requesterId: z.string(),
    parentWorkflowId: z.string().nullable(),
    restored: z.array(z.string()),
    unchanged: z.array(z.string()),
    conflicts: z.array(Conflict),
    unsupported: z.array(z.string()),
    policyVersion: z.number().int().nullable(),
    pin: z.object({ from: z.number().int().nullable(), to: z.number().int().nullable() }).nullable(),
    outcome: z.string().nullable(),
    startedAt: z.string(),
    restoredAt: z.string().nullable(),
    verifiedAt: z.string().nullable(),
    revision: z.number().int(),
  })
  .meta({ id: 'TemplateRollback' });

const Counts = z.object({
  total: z.number().int(),
  started: z.number().int(),
  rolledBack: z.number().int(),
  withConflicts: z.number().int(),
  failed: z.number().int(),
  alreadyRequested: z.number().int(),
});

export const RolloutRollbackView = z
  .object({
    rolloutId: Uuid,
    workflowId: z.string(),
    status: z.enum(['running', 'completed']),
    requesterId: z.string(),
    counts: Counts,
    running: z.array(z.string()),
    startedAt: z.string(),
    completedAt: z.string().nullable(),
    revision: z.number().int(),
    tenants: z
      .array(
        z.object({
          tenantId: Uuid,
          status: z.enum(ROLLBACK_STATUSES),
          conflicts: z.array(z.string()),
          outcome: z.string().nullable(),
        }),
      )
      .describe('Each tenant’s rollback as it stands, by tenant id (those requested on their own included).'),
  })
  .meta({ id: 'RolloutRollback' });

import { z } from 'zod';
import { Uuid } from '../tenancy/schemas.js';
import { nonBlank, UtcDateTime } from '../text.js';
import { PLAN_AREAS } from './contract.js';
import { DRIFT_EXCEPTION_MAX_DAYS, DRIFT_EXCEPTION_STATUSES, DRIFT_ITEM_STATUSES, DRIFT_MODES, TENANT_DRIFT_STATUSES } from './drift.js';

/** The API's bodies and answers for drift (zod, also the OpenAPI document). */

/** A drift path as checks report it: a security setting, a role (or one of its fields), or a policy path. */
const DRIFT_PATH = /^(directory\.settings\.[A-Za-z]+|directory\.roles(\.|\[).+|policy(\.|\[).+)$/;
export const DriftPath = z
  .string()
  .max(500)
  .regex(DRIFT_PATH, 'a drift path: directory.settings.<name>, directory.roles.<role>[.<field>] or policy.<path>');

export const CreateDriftExceptionRequest = z
  .strictObject({
    path: DriftPath,
    /** Who answers for the deviation while it lasts. */
    owner: nonBlank(200),
    justification: nonBlank(2000),
    /** Required: every exception ends, at most DRIFT_EXCEPTION_MAX_DAYS from now. */
    expiresAt: UtcDateTime,
  })
  .meta({ id: 'CreateDriftExceptionRequest' });

export const DriftExceptionDecisionBody = z
  .strictObject({ comment: z.string().trim().max(2000).optional() })
  .meta({ id: 'DriftExceptionDecision' });

export const DriftExceptionView = z
  .object({
    id: Uuid,
    tenantId: Uuid,
    path: z.string(),
    owner: z.string(),
    justification: z.string(),
    expiresAt: z.string(),
    status: z.enum(DRIFT_EXCEPTION_STATUSES),
    createdAt: z.string(),
    createdBy: z.string(),
    approvedAt: z.string().nullable(),
    approvedBy: z.string().nullable(),
    endedAt: z.string().nullable(),
    endedBy: z.string().nullable(),
  })
  .meta({ id: 'DriftException' });

export const DriftItemView = z
  .object({
    id: Uuid,
    path: z.string(),
    area: z.enum(PLAN_AREAS),
    expected: z.unknown(),
    actual: z.unknown(),
    mode: z.enum(DRIFT_MODES),
    status: z.enum(DRIFT_ITEM_STATUSES),
    templateId: Uuid,
    version: z.number().int(),
    firstSeenAt: z.string(),
    lastSeenAt: z.string(),
    resolvedAt: z.string().nullable(),
    resolution: z.enum(['cleared', 'remediated']).nullable(),
    alertedAt: z.string().nullable(),
    remediationError: z.string().nullable(),
    exceptionId: Uuid.nullable(),
  })
  .meta({ id: 'DriftItem' });

export const TenantDriftView = z
  .object({
    tenantId: Uuid,
    status: z.enum(TENANT_DRIFT_STATUSES),
    templateId: Uuid.nullable(),
    appliedVersion: z.number().int().nullable(),
    checkedAt: z.string().nullable(),
    checkError: z.string().nullable(),
    items: z.array(DriftItemView),
    exceptions: z.array(DriftExceptionView),
  })
  .meta({ id: 'TenantDrift' });

export const DriftCheckView = TenantDriftView.extend({
  check: z.object({
    outcome: z.enum(['checked', 'skipped', 'failed']),
    reason: z.string().nullable(),
    detected: z.number().int(),
    resolved: z.number().int(),
    remediated: z.number().int(),
    alerted: z.number().int(),
  }),
}).meta({ id: 'TenantDriftCheck' });

export const DriftScheduleView = z
  .object({
    scheduleId: z.string(),
    intervalSeconds: z.number().int().nullable(),
    paused: z.boolean(),
    note: z.string().nullable(),
    nextActionTimes: z.array(z.string()),
    recentActions: z.array(z.object({ scheduledAt: z.string(), takenAt: z.string(), workflowId: z.string() })),
  })
  .meta({ id: 'DriftSchedule' });

export const DriftScheduleControlBody = z
  .strictObject({ note: z.string().trim().max(500).optional() })
  .meta({ id: 'DriftScheduleControl' });

export { DRIFT_EXCEPTION_MAX_DAYS };

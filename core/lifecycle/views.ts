import { z } from 'zod';
import { AuditEventView } from '../audit/schemas.js';
import { INT4_MAX, Uuid } from '../tenancy/schemas.js';
import {
  HR_EVENT_DISPOSITIONS,
  HR_EVENT_TYPES,
  IMPORT_FORMATS,
  IMPORT_ROW_STATUSES,
  IMPORT_STATUSES,
  PERSON_STATUSES,
  type HrImportRowStatus,
} from './contract.js';
import { PersonId } from './schemas.js';

/**
 * Response and query shapes of the lifecycle API (documentation and query validation; the
 * use cases build the values).
 */

const EventType = z.enum(HR_EVENT_TYPES);
const Holding = z.object({ role: z.string(), ruleId: z.string().describe('The birthright rule that gives it.') });
const Attributes = z.record(z.string(), z.string());

export const HrEventReceiptSchema = z
  .object({
    eventId: z.string(),
    personId: z.string(),
    type: EventType,
    effectiveAt: z.string(),
    disposition: z.enum(HR_EVENT_DISPOSITIONS).describe('superseded: older than an event already applied; changes nothing.'),
    cancelled: z.array(z.string()).describe('Waiting events this one cancelled.'),
    receivedAt: z.string(),
    duplicate: z.boolean().describe('True when this event id was received before: the first receipt is returned.'),
  })
  .meta({ id: 'HrEventReceipt' });

export const PersonViewSchema = z
  .object({
    tenantId: z.string(),
    personId: z.string(),
    workflowId: z.string(),
    status: z.enum(PERSON_STATUSES),
    profile: z.object({ username: z.string(), displayName: z.string(), email: z.string().nullable().optional() }).nullable(),
    attributes: Attributes,
    birthright: z.array(Holding),
    matchedRuleIds: z.array(z.string()),
    eligibleGrantRoles: z.array(z.string()),
    pendingRemovals: z.array(Holding.extend({ dueAt: z.string(), hrEventId: z.string(), policyVersion: z.number().int() })),
    pendingEvents: z.array(
      z.object({ eventId: z.string(), type: EventType, effectiveAt: z.string(), phase: z.enum(['waiting', 'pre_provisioned']) }),
    ),
    deletion: z.object({ dueAt: z.string(), mode: z.enum(['delete', 'anonymise']), hrEventId: z.string() }).nullable(),
    lastApplied: z.object({ eventId: z.string(), type: EventType, effectiveAt: z.string() }).nullable(),
    policyVersion: z.number().int().nullable(),
    joinedAt: z.string().nullable(),
    leftAt: z.string().nullable(),
    version: z.number().int(),
  })
  .meta({ id: 'Person' });

export const SubmitHrEventResultSchema = z
  .object({ receipt: HrEventReceiptSchema, person: PersonViewSchema })
  .meta({ id: 'HrEventSubmission' });

const EntitlementSchema = z.object({
  id: z.string(),
  tenantId: z.string(),
  subjectId: z.string(),
  role: z.string(),
  sourceType: z.enum(['grant', 'birthright', 'template', 'manual']),
  sourceId: z.string(),
  grantedAt: z.string(),
  endedAt: z.string().nullable(),
  endReason: z.string().nullable(),
  expiresAt: z.string().nullable(),
});

export const PersonDetailsSchema = z
  .object({
    person: PersonViewSchema,
    entitlements: z.array(EntitlementSchema).describe('Open entitlements from the ledger: why each access exists.'),
    grants: z
      .array(z.object({ grantId: z.string(), role: z.string(), status: z.string(), endAt: z.string() }))
      .describe('Grants not over yet.'),
  })
  .meta({ id: 'PersonDetails' });

export const PersonTimelineSchema = z
  .object({
    personId: z.string(),
    hrEvents: z.array(
      z.object({
        eventId: z.string(),
        personId: z.string(),
        type: EventType,
        effectiveAt: z.string(),
        body: z.record(z.string(), z.unknown()),
        policyVersion: z.number().int(),
        status: z.string(),
        statusReason: z.string().nullable(),
        submittedBy: z.string(),
        receipt: HrEventReceiptSchema.nullable(),
        receivedAt: z.string(),
        updatedAt: z.string(),
      }),
    ),
    events: z.array(AuditEventView),
  })
  .meta({ id: 'PersonTimeline' });

export const LifecyclePreviewSchema = z
  .object({
    eventId: z.string(),
    personId: z.string(),
    type: EventType,
    policyVersion: z.number().int(),
    outcome: z.enum(['apply', 'superseded', 'rejected']),
    reason: z.string().nullable(),
    appliesAt: z.string(),
    preProvisionAt: z.string().nullable(),
    cancels: z.array(z.string()),
    account: z.enum(['create', 'create_disabled', 'enable', 're_enable', 'disable', 'none']),
    attributes: z.object({ before: Attributes, after: Attributes }),
    matchedRuleIds: z.array(z.string()),
    rolesToAdd: z.array(Holding),
    rolesToRemoveNow: z.array(Holding),
    rolesToRemoveAfterGrace: z.array(Holding.extend({ dueAt: z.string() })),
    removalsCancelled: z.array(Holding),
    grantsToEnd: z.array(z.looseObject({ grantId: z.string(), role: z.string() })),
    entitlementsToEnd: z.array(z.looseObject({ role: z.string(), sourceType: z.string(), sourceId: z.string() })),
    revokeSessions: z.boolean(),
    deletion: z.looseObject({ action: z.enum(['schedule', 'cancel']) }).nullable(),
  })
  .meta({ id: 'LifecyclePreview' });

const ImportRowResultSchema = z
  .object({
    row: z.number().int().describe('1-based data row (CSV: the first line after the header is row 1).'),
    eventId: z.string().nullable(),
    personId: z.string().nullable(),
    status: z.enum(IMPORT_ROW_STATUSES),
    issues: z.array(z.object({ path: z.string(), message: z.string() })).describe('For an invalid row: each offending field.'),
    error: z
      .object({ status: z.number().int(), code: z.string(), message: z.string() })
      .nullable()
      .describe('For a rejected row: how the single-event endpoint would have answered.'),
  })
  .meta({ id: 'HrImportRowResult' });

const Count = z.number().int().min(0);

export const HrImportViewSchema = z
  .object({
    importId: z.string(),
    tenantId: z.string(),
    workflowId: z.string(),
    status: z.enum(IMPORT_STATUSES),
    format: z.enum(IMPORT_FORMATS),
    policyVersion: z.number().int().describe('The tenant policy version the rows are checked against and decided by.'),
    submittedBy: z.string(),
    total: Count,
    done: Count.describe('Rows with a result.'),
    failed: Count.describe('Rows invalid or rejected.'),
    counts: z.object(Object.fromEntries(IMPORT_ROW_STATUSES.map((status) => [status, Count])) as Record<HrImportRowStatus, typeof Count>),
    createdAt: z.string(),
    startedAt: z.string().nullable(),
    completedAt: z.string().nullable(),
  })
  .meta({ id: 'HrImport' });

export const HrImportProgressSchema = HrImportViewSchema.extend({
  rows: z.array(ImportRowResultSchema).describe('Row results in row order: one page.'),
  nextCursor: z.number().int().nullable().describe('Pass as `after` for the next page; null on the last one.'),
}).meta({ id: 'HrImportProgress' });

export const HrImportListSchema = z
  .object({ imports: z.array(HrImportViewSchema), nextCursor: z.string().nullable() })
  .meta({ id: 'HrImportList' });

export const HrImportQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  after: z.coerce.number().int().min(0).max(INT4_MAX).optional().describe('Cursor: the last row number of the previous page.'),
  status: z
    .enum([...IMPORT_ROW_STATUSES, 'failed'])
    .optional()
    .describe('Only rows with this status (`failed`: invalid or rejected).'),
});

export const HrImportListQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(100).default(20),
  after: Uuid.optional().describe('Cursor: the last import id of the previous page.'),
});

export const PersonListQuery = z.strictObject({
  status: PersonViewSchema.shape.status.optional(),
  q: z
    .string()
    .max(200)
    .optional()
    .describe(
      'Search: people whose id, display name or email contains this text, ignoring case; blank searches for nothing in particular.',
    ),
  limit: z.coerce.number().int().min(1).max(500).default(100),
  after: PersonId.optional().describe('Cursor: the last person id of the previous page.'),
});

export const TimelineQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(1000).default(500),
  afterSeq: z.coerce.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
});

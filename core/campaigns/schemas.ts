import { z } from 'zod';
import { DateTime, nonBlank } from '../text.js';
import { TenantTag } from '../tenancy/schemas.js';
import { STANDING_REVIEW_MAX_ITEMS } from './standing.js';
import { CRON_PATTERN, cronProblem, isTimeZone, TIME_ZONES } from './cron.js';
import { CAMPAIGN_RUN_STATUSES, ITEM_OUTCOMES, ITEM_RESULTS, REVIEW_DECISIONS, REVIEW_NOTICE_KINDS, REVIEW_STATUSES } from './contract.js';

const Uuid = z.uuid();
export const REMEDIATION_MODES = ['at_close', 'on_decision'] as const;
/** Entitlement source types (core/directory/connector.ts), as a tuple zod can enumerate. */
const ENTITLEMENT_SOURCE_TYPES = ['grant', 'birthright', 'template', 'manual'] as const;
const RoleName = z.string().regex(/^[A-Za-z0-9._-]{1,100}$/, 'letters, digits, . _ -');
const SubjectId = z.string().min(1).max(200);
const INT4_MAX = 2_147_483_647;
const DAY_MINUTES = 24 * 60;

/**
 * Who reviews, tried in order until one gives at least one reviewer for the item: the tenant's
 * `tenant_reviewer` holders, its `tenant_approver` holders, or the subject's manager (the
 * directory user's manager attribute naming a member of the tenant's staff by actor id or email,
 * who must hold a tenant decision role there). Reviewers are always the tenant's own people.
 */
export const REVIEWER_SOURCES = ['tenant_reviewer', 'tenant_approver', 'manager'] as const;
export type ReviewerSource = (typeof REVIEWER_SOURCES)[number];
/** Declared `uniqueItems` in the document, and enforced. */
const unique = <T extends z.ZodArray>(array: T) =>
  array.meta({ uniqueItems: true }).refine((list) => new Set(list).size === list.length, 'each value at most once');

const ReviewerChain = unique(z.array(z.enum(REVIEWER_SOURCES)).min(1).max(3));

/** first_decision: the first reviewer to decide decides; all_must_accept: every reviewer keeps, any revoke revokes; any_deny: one revoke revokes. */
export const STAGE_STRATEGIES = ['first_decision', 'all_must_accept', 'any_deny'] as const;

export const CampaignStage = z.strictObject({
  /** How long the stage stays open (fractions allowed). */
  durationMinutes: z
    .number()
    .min(0.01)
    .max(365 * DAY_MINUTES),
  strategy: z.enum(STAGE_STRATEGIES).default('first_decision'),
  /** This stage's reviewers; the definition's when absent. */
  reviewers: ReviewerChain.optional(),
});

/**
 * Which tenants a run reviews: the listed ones and those carrying any of the tags, or every active
 * tenant when neither is given; never the excluded ones, by id or by tag.
 */
export const CampaignScope = z.strictObject({
  tenantIds: unique(z.array(Uuid).max(1000)).default([]),
  /** Tenants with at least one of these tags (tenants' own `tags`). */
  tags: unique(z.array(TenantTag).max(50)).default([]),
  exclude: z.array(Uuid).max(500).default([]),
  /** Tenants with any of these tags are never reviewed. */
  excludeTags: z.array(TenantTag).max(50).default([]),
  /** With every tenant or by tag: those created after this definition version also join its runs; off, only those that existed then. */
  includeLaterTenants: z.boolean().default(true),
});

/** One access by tenant, subject and role: what a review of "exactly these" is scoped to. */
export const ExactItem = z.strictObject({ tenantId: Uuid, subjectId: SubjectId, role: RoleName });

/** Whose access is reviewed: everyone's, people's only, or service accounts' only (users whose `serviceAccount` attribute is true). */
export const ACCOUNT_KINDS = ['all', 'people', 'service_accounts'] as const;

/**
 * A recurrence: every `intervalMinutes`, or on a five-field `cron` expression read in `timezone`
 * (an IANA name, UTC when absent). Exactly one of the two.
 */
export const CampaignRecurrence = z
  .strictObject({
    intervalMinutes: z
      .number()
      .min(0.05)
      .max(366 * DAY_MINUTES)
      .optional(),
    /** Five fields (minute hour day-of-month month day-of-week; names in capitals) or a shorthand such as `@daily`. */
    cron: z.string().max(200).meta({ pattern: CRON_PATTERN }).optional(),
    /** An IANA time zone name; UTC when absent. */
    timezone: z
      .string()
      .max(64)
      .meta({ enum: [...TIME_ZONES] })
      .optional(),
    paused: z.boolean().default(false),
  })
  .superRefine((r, ctx) => {
    if ((r.intervalMinutes === undefined) === (r.cron === undefined))
      ctx.addIssue({ code: 'custom', path: ['cron'], message: 'give exactly one of intervalMinutes and cron' });
    if (r.cron !== undefined) {
      const problem = cronProblem(r.cron);
      if (problem) ctx.addIssue({ code: 'custom', path: ['cron'], message: problem });
    }
    if (r.timezone !== undefined) {
      if (r.cron === undefined) ctx.addIssue({ code: 'custom', path: ['timezone'], message: 'a time zone goes with a cron expression' });
      else if (!isTimeZone(r.timezone))
        ctx.addIssue({ code: 'custom', path: ['timezone'], message: `"${r.timezone}" is not an IANA time zone name (e.g. Europe/Berlin)` });
    }
  });

export const CampaignDefinitionDocument = z
  .strictObject({
    scope: CampaignScope.default(CampaignScope.parse({})),
    /** What is reviewed: every privileged role's members (default), or the named roles'. */
    /** What is reviewed: the members of the named roles, or of every privileged role when none is named. */
    items: z
      .strictObject({
        roles: unique(z.array(RoleName).max(100)).default([]),
        /** Only access with at least one of these sources (grant, birthright, manual, template); every access when absent. */
        sources: z.array(z.enum(ENTITLEMENT_SOURCE_TYPES)).min(1).max(4).optional(),
        accounts: z.enum(ACCOUNT_KINDS).default('all'),
        /** Only exactly this access (each tenant must be in `scope.tenantIds`): a review of a standing-privilege list. */
        exactly: z.array(ExactItem).min(1).max(STANDING_REVIEW_MAX_ITEMS).optional(),
      })
      .default({ roles: [], accounts: 'all' }),
    reviewers: z
      .strictObject({
        chain: ReviewerChain.default(['tenant_reviewer']),
        /** The directory user attribute that names a subject's manager. */
        managerAttribute: z
          .string()
          .regex(/^[A-Za-z][A-Za-z0-9_]{0,62}$/)
          .default('manager'),
      })
      .default({ chain: ['tenant_reviewer'], managerAttribute: 'manager' }),
    stages: z.array(CampaignStage).min(1).max(5),
    /** The recommendation says revoke for a subject with no sign-in for this many days. */
    inactivityDays: z.number().int().min(1).max(3650).default(30),
    /** What an item nobody decided becomes when the last stage closes. */
    nonResponse: z.enum(['keep', 'revoke', 'recommendation']).default('keep'),
    guardrails: z
      .strictObject({
        /** Directory user ids never revoked automatically (besides users whose `breakGlass` attribute is true). */
        breakGlassAccounts: z.array(SubjectId).max(100).default([]),
        /** Automatic revocations per tenant and review: at most this many, and at most this share of its items. */
        maxAutoRevocations: z.number().int().min(0).max(INT4_MAX).default(50),
        maxAutoRevocationPercent: z.number().min(0).max(100).default(10),
      })
      .default({ breakGlassAccounts: [], maxAutoRevocations: 50, maxAutoRevocationPercent: 10 }),
    /**
     * A recurrence: a Temporal Schedule (`campaign-schedule/<definitionId>`) starts a run every
     * `intervalMinutes` (fractions allowed), skipping a start while the previous run is still going.
     */
    schedule: CampaignRecurrence.nullable().default(null),
    /**
     * When revocations are applied: `at_close`, when the review's last stage closes; `on_decision`,
     * as soon as a reviewer's revoke settles the item (it can no longer change), and revocations a
     * stage's close settles are applied at that close.
     */
    remediation: z.enum(REMEDIATION_MODES).default('at_close'),
    /** Notices to the reviewers with undecided items, this many minutes before each stage's deadline. */
    reminders: z
      .strictObject({
        beforeDeadlineMinutes: unique(
          z
            .array(
              z
                .number()
                .min(0.01)
                .max(365 * DAY_MINUTES),
            )
            .max(10),
        ).default([]),
      })
      .default({ beforeDeadlineMinutes: [] }),
    /**
     * Once per stage, this long after it opens, items nobody has decided get a reviewer from
     * `chain` (the tenant's own people, tried in order): added beside the current ones, or
     * replacing those who have not answered.
     */
    escalation: z
      .strictObject({
        afterMinutes: z
          .number()
          .min(0.01)
          .max(365 * DAY_MINUTES),
        action: z.enum(['add', 'replace']).default('add'),
        chain: ReviewerChain.default(['tenant_approver']),
      })
      .nullable()
      .default(null),
    /**
     * When the last stage closes, items still waiting for an answer go back to the reviewers who
     * did not answer, with only those items, up to `times` rounds of `durationMinutes`, before the
     * non-response policy applies.
     */
    reiteration: z
      .strictObject({
        times: z.number().int().min(1).max(5),
        durationMinutes: z
          .number()
          .min(0.01)
          .max(365 * DAY_MINUTES),
      })
      .nullable()
      .default(null),
  })
  .superRefine((d, ctx) => {
    const listed = new Set(d.scope.tenantIds);
    d.items.exactly?.forEach((item, i) => {
      if (!listed.has(item.tenantId))
        ctx.addIssue({ code: 'custom', path: ['items', 'exactly', i, 'tenantId'], message: 'not among scope.tenantIds' });
    });
  })
  .meta({ id: 'CampaignDefinitionDocument' });
export type CampaignDefinitionDocument = z.infer<typeof CampaignDefinitionDocument>;

export const CreateCampaignBody = z
  .strictObject({ name: nonBlank(200), definition: CampaignDefinitionDocument })
  .meta({ id: 'CreateCampaign' });
export const UpdateCampaignBody = z
  .strictObject({
    /** The version this change is based on; a concurrent change makes it 409. */
    expectedVersion: z.number().int().min(1).max(INT4_MAX),
    name: nonBlank(200).optional(),
    definition: CampaignDefinitionDocument,
  })
  .meta({ id: 'UpdateCampaign' });

export const CampaignView = z
  .object({
    id: Uuid,
    name: z.string(),
    version: z.number().int(),
    definition: CampaignDefinitionDocument,
    lastRunNo: z.number().int(),
    createdAt: z.string(),
    createdBy: z.string(),
    updatedAt: z.string(),
  })
  .meta({ id: 'Campaign' });
export type CampaignView = z.infer<typeof CampaignView>;

export const CampaignVersionView = z
  .object({
    definitionId: Uuid,
    version: z.number().int(),
    definition: CampaignDefinitionDocument,
    createdAt: z.string(),
    createdBy: z.string(),
  })
  .meta({ id: 'CampaignVersion' });
export type CampaignVersionView = z.infer<typeof CampaignVersionView>;

export const CampaignRunView = z
  .object({
    runId: Uuid,
    definitionId: Uuid,
    runNo: z.number().int(),
    definitionVersion: z.number().int(),
    workflowId: z.string(),
    status: z.enum(CAMPAIGN_RUN_STATUSES),
    trigger: z.enum(['api', 'schedule']),
    startedBy: z.string(),
    tenantCount: z.number().int().nullable(),
    materialisedCount: z.number().int(),
    completedCount: z.number().int(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .meta({ id: 'CampaignRun' });
export type CampaignRunView = z.infer<typeof CampaignRunView>;

export const ReviewView = z
  .object({
    tenantId: Uuid,
    runId: Uuid,
    definitionId: Uuid,
    workflowId: z.string(),
    status: z.enum(REVIEW_STATUSES),
    stage: z.number().int(),
    stageCount: z.number().int(),
    stageClosesAt: z.string().nullable(),
    /** 0, or the reiteration round of the last stage. */
    round: z.number().int(),
    itemCount: z.number().int(),
    /** Items by outcome so far (`pending`: not yet decided). */
    outcomes: z.record(z.string(), z.number().int()),
    /** Items by applied result. */
    results: z.record(z.string(), z.number().int()),
    createdAt: z.string(),
    completedAt: z.string().nullable(),
  })
  .meta({ id: 'Review' });
export type ReviewView = z.infer<typeof ReviewView>;

export const CampaignRunDetailView = CampaignRunView.extend({ reviews: z.array(ReviewView) }).meta({ id: 'CampaignRunDetail' });

const SourceView = z.object({ type: z.enum(ENTITLEMENT_SOURCE_TYPES), id: z.string() });
export const ReviewItemView = z
  .object({
    itemId: Uuid,
    tenantId: Uuid,
    runId: Uuid,
    subjectId: z.string(),
    subjectStatus: z.string(),
    role: z.string(),
    privileged: z.boolean(),
    /** Every ledger source that explains the access; empty when nothing recorded does (assigned outside Tenure). */
    sources: z.array(SourceView),
    lastActivityAt: z.string().nullable(),
    breakGlass: z.boolean(),
    /** The holder is a service account (its directory `serviceAccount` attribute is true). */
    serviceAccount: z.boolean(),
    recommendation: z.enum(REVIEW_DECISIONS),
    recommendationReason: z.string(),
    stage: z.number().int(),
    /** The caller's own current decision at the item's stage, if any. */
    myDecision: z.enum(REVIEW_DECISIONS).nullable(),
    outcome: z.enum(ITEM_OUTCOMES).nullable(),
    outcomeBy: z.enum(['decision', 'non_response']).nullable(),
    outcomeReason: z.string().nullable(),
    result: z.enum(ITEM_RESULTS).nullable(),
    resultDetail: z.record(z.string(), z.unknown()).nullable(),
    resultAt: z.string().nullable(),
  })
  .meta({ id: 'ReviewItem' });
export type ReviewItemView = z.infer<typeof ReviewItemView>;

export const ReviewItemsQuery = z.strictObject({
  /** `me`: only items waiting for the caller's decision at their current stage. */
  assignedTo: z.literal('me').optional(),
  runId: Uuid.optional(),
  role: RoleName.optional(),
  subjectId: SubjectId.optional(),
  recommendation: z.enum(REVIEW_DECISIONS).optional(),
  /** With assignedTo=me: whether the caller has decided already. */
  decided: z.enum(['true', 'false']).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  cursor: Uuid.optional().meta({ description: 'The `nextCursor` of the previous page.' }),
});
export type ReviewItemsQuery = z.infer<typeof ReviewItemsQuery>;

/** `recommended` takes the item's own recommendation ("accept all recommendations"). */
const DecisionChoice = z.enum(['keep', 'revoke', 'recommended']);
export const ItemDecisionBody = z
  .strictObject({ decision: DecisionChoice, justification: z.string().trim().max(2000).optional() })
  .meta({ id: 'ReviewDecision' });
/** One justification for the whole call keeps 1,000 decisions inside the API's body limit. */
export const BulkDecisionBody = z
  .strictObject({
    decisions: z
      .array(z.strictObject({ itemId: Uuid, decision: DecisionChoice }))
      .min(1)
      .max(1000),
    justification: z.string().trim().max(2000).optional(),
  })
  .superRefine((body, ctx) => {
    const seen = new Set<string>();
    body.decisions.forEach((d, i) => {
      if (seen.has(d.itemId)) ctx.addIssue({ code: 'custom', path: ['decisions', i, 'itemId'], message: 'item named twice' });
      seen.add(d.itemId);
    });
  })
  .meta({ id: 'BulkReviewDecisions' });
export type BulkDecisionBody = z.infer<typeof BulkDecisionBody>;

export const DecisionResultView = z
  .object({
    recorded: z.number().int().describe('Decisions new or changed by this call.'),
    unchanged: z.number().int().describe('Decisions already recorded exactly so (a retried call).'),
    items: z.array(z.object({ itemId: Uuid, decision: z.enum(REVIEW_DECISIONS), changed: z.boolean() })),
  })
  .meta({ id: 'ReviewDecisionResult' });
export type DecisionResultView = z.infer<typeof DecisionResultView>;

export const ScheduleView = z
  .object({
    scheduleId: z.string(),
    /** The recurrence as the definition states it: an interval, or a cron expression in a time zone. */
    intervalMinutes: z.number().nullable(),
    cron: z.string().nullable(),
    timezone: z.string().nullable(),
    paused: z.boolean(),
    note: z.string().nullable(),
    nextActionTimes: z.array(z.string()),
    recentActions: z.array(z.object({ scheduledAt: z.string(), takenAt: z.string(), workflowId: z.string() })),
  })
  .meta({ id: 'CampaignSchedule' });
export type ScheduleView = z.infer<typeof ScheduleView>;

export const ScheduleNoteBody = z.strictObject({ note: z.string().trim().max(500).optional() }).meta({ id: 'CampaignScheduleNote' });

export const MoveDeadlineBody = z
  .strictObject({ closesAt: DateTime, comment: z.string().trim().max(2000).optional() })
  .meta({ id: 'MoveReviewDeadline' });

export const CancelRunBody = z.strictObject({ reason: z.string().trim().max(2000).optional() }).meta({ id: 'CancelCampaignRun' });

export const ReassignBody = z
  .strictObject({
    /** The reviewer whose undecided items move. */
    from: Uuid,
    /** A member of the tenant's own staff holding tenant_reviewer or tenant_approver there; never MSP staff. */
    to: Uuid,
    itemIds: unique(z.array(Uuid).min(1).max(1000)).optional(),
    comment: z.string().trim().max(2000).optional(),
  })
  .refine((b) => b.from !== b.to, { path: ['to'], message: 'the same reviewer as `from`' })
  .meta({ id: 'ReassignReviewItems' });

export const ReassignResultView = z
  .object({
    moved: z.number().int(),
    skipped: z.array(z.object({ itemId: Uuid, reason: z.string() })),
  })
  .meta({ id: 'ReassignResult' });

export const NudgeBody = z
  .strictObject({
    reviewerIds: unique(z.array(Uuid).min(1).max(100)).optional(),
    comment: z.string().trim().max(2000).optional(),
  })
  .meta({ id: 'NudgeReviewers' });

export const NudgeResultView = z.object({ notices: z.number().int() }).meta({ id: 'NudgeResult' });

/** A notice in a reviewer's inbox (also sent to the tenant's webhook). */
export const ReviewNoticeView = z
  .object({
    noticeId: Uuid,
    runId: Uuid,
    stage: z.number().int(),
    kind: z.enum(REVIEW_NOTICE_KINDS),
    items: z.number().int().describe('Items waiting for the reviewer when the notice was written.'),
    closesAt: z.string().nullable(),
    createdAt: z.string(),
  })
  .meta({ id: 'ReviewNotice' });
export type ReviewNoticeView = z.infer<typeof ReviewNoticeView>;

import type { TypedSearchAttributes } from '@temporalio/common';
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { Authority } from '../audit/chain.js';
import { MSP_TENANT, tenantSearchAttributes } from '../temporal.js';
import type { CampaignDefinitionDocument } from './schemas.js';

/**
 * Recertification campaigns. One run workflow per run, `campaign/<definitionId>/<runNo>`, starts
 * one child per tenant, `review/<tenant>/<runId>`, in a bounded sliding window. Items, decisions
 * and results live in PostgreSQL in the tenant's row-level-security scope; workflows carry ids,
 * counters and deadlines only, so their histories stay bounded whatever the item count.
 */
export const CAMPAIGN_RUN_WORKFLOW_TYPE = 'campaignRunWorkflow';
export const TENANT_REVIEW_WORKFLOW_TYPE = 'tenantReviewWorkflow';
/** What a definition's Schedule starts: it numbers a run and runs it to the end (so overlap "skip" means something). */
export const SCHEDULED_CAMPAIGN_RUN_WORKFLOW_TYPE = 'scheduledCampaignRunWorkflow';

/** The campaigns domain's own queue, so a fan-out over a thousand tenants never delays a grant's expiry. */
export const CAMPAIGNS_TASK_QUEUE = 'campaigns';

export function campaignRunWorkflowId(definitionId: string, runNo: number): string {
  return `campaign/${definitionId}/${runNo}`;
}

/** One Temporal Schedule per definition that has a recurrence. */
export function campaignScheduleId(definitionId: string): string {
  return `campaign-schedule/${definitionId}`;
}

export function tenantReviewWorkflowId(tenantId: string, runId: string): string {
  return `review/${tenantId}/${runId}`;
}

/** A run belongs to the MSP; each tenant's review carries its own tenant. */
export function campaignRunSearchAttributes(): TypedSearchAttributes {
  return tenantSearchAttributes(MSP_TENANT);
}
export function reviewSearchAttributes(tenantId: string): TypedSearchAttributes {
  return tenantSearchAttributes(tenantId);
}

/** Reviews materialising at once per run: the window slides as each tenant's items are stored. */
export const DEFAULT_REVIEW_WINDOW = 20;
/** Children a run starts before it continues as new (each start and its two signals are ~6 events). */
export const DEFAULT_CHILDREN_PER_RUN = 500;
/** Tenants read per page from campaign_run_tenants. */
export const TENANT_PAGE_SIZE = 100;
/** Items one remediation activity handles; the review's history grows by one activity per batch. */
export const REMEDIATION_BATCH = 200;
/**
 * Remediation calls to targets (a grant's revoke, an end, a removal, each with its read-back) one
 * worker makes at once, across every review it runs (CAMPAIGN_REMEDIATION_CONCURRENCY).
 */
export const DEFAULT_REMEDIATION_CONCURRENCY = 16;
/** A review continues as new past this many history events (only remediation retries can get there). */
export const REVIEW_HISTORY_LIMIT = 2_000;
/** A run waiting for its reviews to finish continues as new past this many history events (each finish is a signal). */
export const RUN_HISTORY_LIMIT = 5_000;

export const CAMPAIGN_RUN_STATUSES = ['starting', 'running', 'completed', 'cancelled'] as const;
export type CampaignRunStatus = (typeof CAMPAIGN_RUN_STATUSES)[number];

export const REVIEW_STATUSES = ['materialising', 'open', 'settling', 'remediating', 'completed', 'cancelled'] as const;
export type ReviewStatus = (typeof REVIEW_STATUSES)[number];

export const REVIEW_DECISIONS = ['keep', 'revoke'] as const;
export type ReviewDecision = (typeof REVIEW_DECISIONS)[number];

export const ITEM_OUTCOMES = ['keep', 'revoke', 'held'] as const;
export type ItemOutcome = (typeof ITEM_OUTCOMES)[number];

/**
 * What remediation did to an item: `applied_verified` (removed and read back gone),
 * `already_absent` (nothing held it any more), `needs_rule_change` (a birthright rule still
 * explains it; the rule is named), `retrying` (not yet confirmed; tried again). `kept` and
 * `held` (a guardrail stopped an automatic revocation) change nothing.
 */
export const ITEM_RESULTS = ['kept', 'held', 'applied_verified', 'already_absent', 'needs_rule_change', 'retrying'] as const;
export type ItemResult = (typeof ITEM_RESULTS)[number];

export interface CampaignRunInput {
  runId: string;
  definitionId: string;
  runNo: number;
  definitionVersion: number;
  definition: CampaignDefinitionDocument;
  /** Children materialising at once. */
  window: number;
  /** Children one run starts before continuing as new. */
  childrenPerRun: number;
  /** History events past which a run waiting for its reviews continues as new (RUN_HISTORY_LIMIT when absent). */
  historyLimit?: number;
  /** Carried across continue-as-new: the last tenant started (page cursor) and the counters. */
  carried?: {
    afterTenantId: string | null;
    total: number;
    started: number;
    materialised: number;
    finished: number;
    /** Set once the run was cancelled: no further review starts. */
    cancelled?: boolean;
  };
}

/** A run's workflow input from its recorded run, with the default window and share of starts. */
export function campaignRunInput(
  run: { id: string; definition_id: string; run_no: number; definition_version: number },
  definition: CampaignDefinitionDocument,
): CampaignRunInput {
  return {
    runId: run.id,
    definitionId: run.definition_id,
    runNo: run.run_no,
    definitionVersion: run.definition_version,
    definition,
    window: DEFAULT_REVIEW_WINDOW,
    childrenPerRun: DEFAULT_CHILDREN_PER_RUN,
  };
}

/**
 * The definition one tenant's review runs with: its scope (and an exact item list) narrowed to
 * that tenant. The review never needs the others, its settings (and report) must not name them,
 * and the whole list in every child's input made a thousand-tenant run's history tens of megabytes.
 */
export function reviewDefinition(definition: CampaignDefinitionDocument, tenantId: string): CampaignDefinitionDocument {
  const { exactly } = definition.items;
  return {
    ...definition,
    scope: { tenantIds: [tenantId], tags: [], exclude: [], excludeTags: [], includeLaterTenants: definition.scope.includeLaterTenants },
    items: { ...definition.items, ...(exactly ? { exactly: exactly.filter((e) => e.tenantId === tenantId) } : {}) },
  };
}

export interface CampaignRunProgress {
  runId: string;
  total: number | null;
  started: number;
  materialised: number;
  finished: number;
  /** Present once the run was cancelled. */
  cancelled?: boolean;
}

export interface TenantReviewInput {
  runId: string;
  tenantId: string;
  definitionId: string;
  definitionVersion: number;
  definition: CampaignDefinitionDocument;
  /** The run workflow to tell when the items are stored and when the review is over. */
  parentWorkflowId: string;
  /** Set when a review continues as new during remediation. */
  resume?: 'remediating' | ReviewResume;
}

/** What a review carries when it continues as new while a stage is open (or after a cancellation). */
export interface ReviewResume {
  stage: number;
  /** When this stage (or round) opened: the escalation delay counts from here. */
  openedAt: string;
  round: number;
  closesAt: string;
  /** Reminder offsets (minutes before the deadline) already sent at this stage and round. */
  reminded: number[];
  escalated: boolean;
  /** Decisions arrived that remediation on decision has not yet settled. */
  decisionsPending: boolean;
  cancelled?: boolean;
}

export interface ReviewProgress {
  runId: string;
  tenantId: string;
  status: ReviewStatus;
  stage: number;
  stageClosesAt: string | null;
  /** 0, or the reiteration round of the last stage for its non-responders. */
  round?: number;
}

/** MSP staff act on a review (cancel, reassign, nudge): who, under which authority. */
export interface ReviewActorInput {
  actorId: string;
  authority: Authority;
  comment?: string;
}

export interface ReassignInput extends ReviewActorInput {
  fromReviewerId: string;
  toReviewerId: string;
  /** Only these items (all of the reviewer's undecided ones at the open stage when absent). */
  itemIds?: string[];
}

export interface ReassignResult {
  moved: number;
  /** Items left with `from`: the new reviewer is their subject, or `from` has decided them already. */
  skipped: { itemId: string; reason: string }[];
}

export interface NudgeInput extends ReviewActorInput {
  /** Only these reviewers (every reviewer with undecided items at the open stage when absent). */
  reviewerIds?: string[];
}

export interface MoveDeadlineInput {
  actorId: string;
  /** The stage's new deadline; a time already past closes the stage now. */
  closesAt: string;
  authority: Authority;
}

/** A child tells its run that its items are stored (the window slides) and that it has finished. */
export const reviewMaterialisedSignal = defineSignal<[{ tenantId: string }]>('reviewMaterialised');
export const reviewFinishedSignal = defineSignal<[{ tenantId: string }]>('reviewFinished');
export const campaignRunQuery = defineQuery<CampaignRunProgress>('campaignRun');

export const moveReviewDeadlineUpdate = defineUpdate<ReviewProgress, [MoveDeadlineInput]>('moveDeadline');
export const reviewQuery = defineQuery<ReviewProgress>('review');
/** Stops the review: no stage opens or closes after it; revocations already settled are still applied and read back. */
export const cancelReviewUpdate = defineUpdate<ReviewProgress, [ReviewActorInput]>('cancelReview');
/** Moves a reviewer's undecided items at the open stage to another member of the tenant's own staff. */
export const reassignReviewUpdate = defineUpdate<ReassignResult, [ReassignInput]>('reassignReview');
/** Reminds reviewers now (a notice in their inbox and the tenant's webhook). */
export const nudgeReviewUpdate = defineUpdate<{ notices: number }, [NudgeInput]>('nudgeReview');
/** The API recorded decisions: a review remediating on decision settles and applies its revocations. */
export const reviewDecisionsSignal = defineSignal('reviewDecisions');
/** Stops a run: no more reviews start, and every review not yet settled is cancelled. */
export const cancelCampaignRunUpdate = defineUpdate<CampaignRunProgress, [ReviewActorInput]>('cancelRun');

export const ReviewRejection = {
  NotOpen: 'ReviewNotOpen', // 409: no stage is open
  InvalidInput: 'ReviewInvalidInput', // 400
  /** 409: the review is applying its settled revocations, completed or cancelled already. */
  NotCancellable: 'ReviewNotCancellable',
  /** 400: the reassignment's target is not a member of the tenant's own staff holding a decision role. */
  NotTenantReviewer: 'ReviewNotTenantReviewer',
  /** 409: a deadline brought forward, by someone not the tenant's approver, while items wait for its reviewers. */
  TenantDecides: 'ReviewTenantDecides',
} as const;

export const CampaignRunRejection = {
  /** 409: the run has completed or was cancelled already. */
  NotCancellable: 'CampaignRunNotCancellable',
} as const;

/** What a reviewer's notice is: a reminder before a deadline, an escalation, a reassignment, a nudge, a reiteration. */
export const REVIEW_NOTICE_KINDS = ['reminder', 'escalation', 'reassignment', 'nudge', 'reiteration'] as const;
export type ReviewNoticeKind = (typeof REVIEW_NOTICE_KINDS)[number];

/** The actor remediation acts as, with the run's authority. */
export const CAMPAIGN_ACTOR = { id: 'campaign', type: 'system' as const };

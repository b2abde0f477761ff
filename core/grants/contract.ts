import type { TypedSearchAttributes } from '@temporalio/common';
import { defineQuery, defineUpdate } from '@temporalio/workflow';
import type { ActorType } from '../audit/chain.js';
import { tenantSearchAttributes } from '../temporal.js';

/**
 * Time-bound admin grants: one workflow per grant, id `grant/<tenant>/<grantId>`.
 * Decisions are Updates with validators, so the caller gets an immediate accept or reject.
 */
export const GRANT_WORKFLOW_TYPE = 'grantWorkflow';

/** The grants domain's own queue, so no other domain's backlog can delay an expiry. */
export const GRANTS_TASK_QUEUE = 'grants';

export function grantWorkflowId(tenantId: string, grantId: string): string {
  return `grant/${tenantId}/${grantId}`;
}

export function grantSearchAttributes(tenantId: string): TypedSearchAttributes {
  return tenantSearchAttributes(tenantId);
}

/** The one list of grant statuses: the type below and the API's zod enum are both built from it. */
export const GRANT_STATUSES = [
  'pending_approval',
  'scheduled',
  'active',
  'revoking',
  'ended',
  'denied',
  'approval_timed_out',
  'cancelled',
] as const;
export type GrantStatus = (typeof GRANT_STATUSES)[number];

/**
 * `failed`: the grant could not go on (the target refused the activation, or the database refused
 * its data for good); any access it gave was removed and verified gone.
 */
export const END_REASONS = ['expired', 'revoked', 'relinquished', 'ineligible', 'failed'] as const;
export type EndReason = (typeof END_REASONS)[number];

/** Attempts in one round of a revocation step; a round that fails them all raises an alert when one is due. */
export const REVOCATION_ALERT_THRESHOLD = 5;

/**
 * While a revocation keeps failing it raises `grant.revocation_alert` after its first failed round
 * and then once per this period, for as long as it fails. The tenant policy's
 * `grants.revocationAlertMinutes` sets it per tenant; this is its default.
 */
export const REVOCATION_ALERT_PERIOD_SECONDS = 3600;

/**
 * Rounds of a failing revocation wait 5 s longer each time, up to this: after an hour's outage a
 * round every ~3 minutes, after ten hours every 10 minutes (the target's own end, told at
 * activation, stops expired access meanwhile).
 */
export const REVOCATION_ROUND_MAX_SECONDS = 600;

/**
 * A revocation that keeps failing continues as new once its run's history holds this many events
 * (about 11 per round), so a target down for weeks never nears Temporal's history limits.
 */
export const REVOCATION_RUN_MAX_EVENTS = 4000;

/** The policy in force when the grant was requested; the workflow decides by this snapshot. */
export interface GrantPolicySnapshot {
  policyVersion: number;
  privileged: boolean;
  approvalsRequired: number;
  approvalTimeoutSeconds: number;
  maxDurationSeconds: number;
  extensionRequiresApproval: boolean;
  maxTotalSeconds: number;
  /** How often a failing revocation alerts again; REVOCATION_ALERT_PERIOD_SECONDS when absent (older grants). */
  revocationAlertPeriodSeconds?: number;
}

export interface GrantInput {
  grantId: string;
  tenantId: string;
  /** The directory user who receives the role. */
  subjectId: string;
  role: string;
  /** The Tenure actor who asked. */
  requesterId: string;
  justification: string | null;
  ticket: string | null;
  /** ISO time the access starts (now, or later for a scheduled grant). */
  startAt: string;
  durationSeconds: number;
  policy: GrantPolicySnapshot;
  requestId: string | null;
  /** Set only by the workflow itself when a long revocation continues as new. */
  resume?: GrantRevocationState;
}

/** What stopped a grant: the step that failed and the failure's type and message (scrubbed of unstorable text). */
export interface GrantFailure {
  /** The audit action or activity that failed, e.g. `grant.revoking` or `grantAccess`. */
  step: string;
  type: string;
  message: string;
}

/** A revocation carried into the next run by continue-as-new: the grant as it stands and where its removal is. */
export interface GrantRevocationState {
  view: GrantView;
  reason: EndReason;
  endedBy: { id: string; type: ActorType };
  step: 'remove' | 'verify';
  /** Rounds of this step failed so far (they pace the next one). */
  round: number;
  /** When the last alert was raised, so there is one per period across runs. */
  alertedAt: string | null;
  notifying: boolean;
  failure: GrantFailure | null;
}

export interface Approval {
  approverId: string;
  approvalId: string;
  at: string;
  comment: string | null;
}

export interface PendingExtension {
  extensionId: string;
  requestedBy: string;
  additionalSeconds: number;
  justification: string | null;
  approvals: Approval[];
}

export interface GrantView {
  grantId: string;
  tenantId: string;
  workflowId: string;
  subjectId: string;
  role: string;
  requesterId: string;
  status: GrantStatus;
  endReason: EndReason | null;
  justification: string | null;
  ticket: string | null;
  policyVersion: number;
  approvalsRequired: number;
  approvals: Approval[];
  deniedBy: string | null;
  startAt: string;
  /** When access ends; moves with approved extensions. */
  endAt: string;
  activatedAt: string | null;
  endedAt: string | null;
  /** When reading the target back confirmed the role was gone (or still legitimately held). */
  revocationVerifiedAt: string | null;
  pendingExtension: PendingExtension | null;
  /** Increases with every change; the read model keeps only the newest. */
  version: number;
}

export interface DecisionInput {
  /** The Tenure actor deciding; the API has already checked they may. */
  actorId: string;
  comment?: string | null;
  /** What allowed it (role bindings, request id), recorded with the decision's audit event. */
  authority?: Record<string, unknown>;
}

export interface ExtendInput {
  actorId: string;
  authority?: Record<string, unknown>;
  additionalSeconds: number;
  justification?: string | null;
}

export const approveGrantUpdate = defineUpdate<GrantView, [DecisionInput]>('approve');
export const denyGrantUpdate = defineUpdate<GrantView, [DecisionInput]>('deny');
export const extendGrantUpdate = defineUpdate<GrantView, [ExtendInput]>('extend');
export const revokeGrantUpdate = defineUpdate<GrantView, [DecisionInput]>('revoke');
export const relinquishGrantUpdate = defineUpdate<GrantView, [DecisionInput]>('relinquish');
export const grantQuery = defineQuery<GrantView>('grant');

/** ApplicationFailure types the validators raise; the API maps them to HTTP statuses. */
export const GrantRejection = {
  NotApplicable: 'GrantDecisionNotApplicable', // 409: already decided, already ended
  SelfApproval: 'GrantSelfApproval', // 403
  DuplicateApprover: 'GrantDuplicateApprover', // 409
  ExtensionOverCap: 'GrantExtensionOverCap', // 400
  InvalidInput: 'GrantInvalidInput', // 400
  NotTenantApprover: 'GrantNotTenantApprover', // 403: an extension's approval only from the tenant's own approvers
  Unavailable: 'GrantDecisionUnavailable', // 503: whether the actor is an approver could not be checked
} as const;

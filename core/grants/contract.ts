import type { TypedSearchAttributes } from '@temporalio/common';
import { defineQuery, defineUpdate } from '@temporalio/workflow';
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

export const END_REASONS = ['expired', 'revoked', 'relinquished', 'ineligible'] as const;
export type EndReason = (typeof END_REASONS)[number];

/** Failures before a revocation that keeps failing raises an alert event (it keeps retrying). */
export const REVOCATION_ALERT_THRESHOLD = 5;

/** The policy in force when the grant was requested; the workflow decides by this snapshot. */
export interface GrantPolicySnapshot {
  policyVersion: number;
  privileged: boolean;
  approvalsRequired: number;
  approvalTimeoutSeconds: number;
  maxDurationSeconds: number;
  extensionRequiresApproval: boolean;
  maxTotalSeconds: number;
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
} as const;

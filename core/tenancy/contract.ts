import type { TypedSearchAttributes } from '@temporalio/common';
import { defineQuery, defineUpdate } from '@temporalio/workflow';
import type { ActorType, Authority } from '../audit/chain.js';
import { tenantSearchAttributes } from '../temporal.js';
import type { TenantPolicyDocument } from './schemas.js';

/**
 * Tenant-owned policy: a change that loosens a tenant's control is a request its own approvers
 * decide, one workflow per change, id `policy-change/<tenant>/<changeId>`. Decisions are Updates
 * with validators; nothing is written to the tenant's policy until the quorum approves.
 */
export const POLICY_CHANGE_WORKFLOW_TYPE = 'policyChangeWorkflow';

/** The tenancy domain's own queue. */
export const TENANCY_TASK_QUEUE = 'tenancy';

export function policyChangeWorkflowId(tenantId: string, changeId: string): string {
  return `policy-change/${tenantId}/${changeId}`;
}

export function policyChangeSearchAttributes(tenantId: string): TypedSearchAttributes {
  return tenantSearchAttributes(tenantId);
}

/**
 * `pending`: waiting for the tenant's approvers. `applied`: approved and written as a new policy
 * version. `conflicted`: approved, but the policy had moved on from the version the change was
 * based on, so nothing was written (propose again). The others change nothing.
 */
export const POLICY_CHANGE_STATUSES = ['pending', 'applied', 'denied', 'withdrawn', 'timed_out', 'conflicted'] as const;
export type PolicyChangeStatus = (typeof POLICY_CHANGE_STATUSES)[number];

/** How one changed setting affects the tenant's control. */
export const POLICY_CHANGE_EFFECTS = ['loosens', 'tightens', 'neutral'] as const;
export type PolicyChangeEffect = (typeof POLICY_CHANGE_EFFECTS)[number];

/** One changed setting: where, before and after, its effect and why (for the approver and the evidence). */
export interface PolicyDiffItem {
  /** JSON path in the policy document, e.g. `grants.roles.GlobalAdmin.approvalsRequired`. */
  path: string;
  /** Absent (undefined) when the setting is new. */
  before?: unknown;
  /** Absent (undefined) when the setting is removed. */
  after?: unknown;
  effect: PolicyChangeEffect;
  reason: string;
}

/** Defaults for the governance settings of a tenant's policy (see TenantPolicyDocument.governance). */
export const DEFAULT_POLICY_CHANGE_APPROVALS = 1;
export const DEFAULT_POLICY_CHANGE_TIMEOUT_DAYS = 7;

export interface PolicyChangeApproval {
  approverId: string;
  approvalId: string;
  at: string;
  comment: string | null;
}

export interface PolicyChangeInput {
  changeId: string;
  tenantId: string;
  /** Who proposed it (an MSP operator or admin, or tenant staff); never an approver of it. */
  proposer: { id: string; type: ActorType };
  /** What allowed the proposal (role bindings, request id), recorded with its audit event. */
  authority: Authority;
  /** The policy version the change is based on; applied only while that is still the current one. */
  baseVersion: number;
  /** The whole proposed document, as the proposer sent it (validated). */
  document: TenantPolicyDocument;
  diff: PolicyDiffItem[];
  /** The tenant's quorum at proposal time (its current policy, never the proposed one). */
  approvalsRequired: number;
  approvalTimeoutSeconds: number;
  comment: string | null;
  requestId: string | null;
}

export interface PolicyChangeView {
  changeId: string;
  tenantId: string;
  workflowId: string;
  status: PolicyChangeStatus;
  proposerId: string;
  baseVersion: number;
  /** The policy version the change became, once applied. */
  appliedVersion: number | null;
  diff: PolicyDiffItem[];
  approvalsRequired: number;
  approvals: PolicyChangeApproval[];
  deniedBy: string | null;
  withdrawnBy: string | null;
  comment: string | null;
  /** Why it ended the way it did (e.g. the version it conflicted with). */
  reason: string | null;
  proposedAt: string;
  expiresAt: string;
  decidedAt: string | null;
  /** Increases with every change; the read model keeps only the newest. */
  version: number;
}

export interface PolicyChangeDecision {
  /** The Tenure actor deciding; the API has already checked they may. */
  actorId: string;
  comment?: string | null;
  /** What allowed it (role bindings, request id), recorded with the decision's audit event. */
  authority?: Authority;
}

export const approvePolicyChangeUpdate = defineUpdate<PolicyChangeView, [PolicyChangeDecision]>('approve');
export const denyPolicyChangeUpdate = defineUpdate<PolicyChangeView, [PolicyChangeDecision]>('deny');
export const withdrawPolicyChangeUpdate = defineUpdate<PolicyChangeView, [PolicyChangeDecision]>('withdraw');
export const policyChangeQuery = defineQuery<PolicyChangeView>('policyChange');

/** ApplicationFailure types the validators raise; the use case maps them to HTTP statuses. */
export const PolicyChangeRejection = {
  NotApplicable: 'PolicyChangeNotApplicable', // 409: already decided, withdrawn or timed out
  SelfApproval: 'PolicyChangeSelfApproval', // 403: the proposer cannot approve
  DuplicateApprover: 'PolicyChangeDuplicateApprover', // 409
  InvalidInput: 'PolicyChangeInvalidInput', // 400
  NotTenantApprover: 'PolicyChangeNotTenantApprover', // 403: approvals and denials only from the tenant's own approvers
  Unavailable: 'PolicyChangeUnavailable', // 503: whether the actor is an approver could not be checked
} as const;

import type { TypedSearchAttributes } from '@temporalio/common';
import { defineQuery, defineUpdate } from '@temporalio/workflow';
import type { Authority } from '../audit/chain.js';
import type { DirectoryAccountState, DirectoryCapability } from '../directory/connector.js';
import { tenantSearchAttributes } from '../temporal.js';

/**
 * Remote remediation actions on one directory user (unlock, MFA reset, …): one workflow per
 * request, id `action/<tenant>/<actionId>`. Request → the tenant's approval where its policy asks
 * → execute through the connector → verify by reading the target back. Decisions are Updates
 * with validators, so the caller gets an immediate accept or reject.
 */
export const ACTION_WORKFLOW_TYPE = 'actionWorkflow';

/** The actions domain's own queue, so a backlog elsewhere never delays an unlock. */
export const ACTIONS_TASK_QUEUE = 'actions';

export function actionWorkflowId(tenantId: string, actionId: string): string {
  return `action/${tenantId}/${actionId}`;
}

export function actionSearchAttributes(tenantId: string): TypedSearchAttributes {
  return tenantSearchAttributes(tenantId);
}

/** The one list of actions: the type, the API's zod enum and the policy's keys are built from it. */
export const ACTION_TYPES = ['unlock', 'reset_mfa', 'revoke_sessions', 'force_password_reset', 'disable_account'] as const;
export type ActionType = (typeof ACTION_TYPES)[number];

/** The connector capability each action needs; null where every target can (setUserStatus). */
export const ACTION_CAPABILITY: Record<ActionType, DirectoryCapability | null> = {
  unlock: 'unlock',
  reset_mfa: 'mfaReset',
  revoke_sessions: 'sessions',
  force_password_reset: 'passwordReset',
  disable_account: null,
};

/**
 * Whether the target, read back after the action, shows it done: the one rule the verify step
 * and the tests apply. A field the target cannot tell (null) never confirms.
 */
export function actionConfirmed(action: ActionType, state: DirectoryAccountState): boolean {
  switch (action) {
    case 'unlock':
      return state.locked === false;
    case 'reset_mfa':
      return state.mfaFactors === 0;
    case 'revoke_sessions':
      return state.liveSessions === 0;
    case 'force_password_reset':
      return state.passwordResetRequired === true;
    case 'disable_account':
      return state.status === 'disabled';
  }
}

/**
 * `pending_approval`: waiting for the tenant's approvers. `executing`: approved, being carried out
 * and verified. `completed`: done and confirmed by reading the target back. `failed`: the target
 * refused it, or did not confirm it. `refused`: its approvals no longer made the quorum when it was
 * about to run (an approver unbound or disabled since). The others ended it before anything changed.
 */
export const ACTION_STATUSES = [
  'pending_approval',
  'executing',
  'completed',
  'failed',
  'refused',
  'denied',
  'cancelled',
  'expired',
] as const;
export type ActionStatus = (typeof ACTION_STATUSES)[number];

/** The policy in force when the action was requested; the workflow decides by this snapshot. */
export interface ActionPolicySnapshot {
  policyVersion: number;
  approvalsRequired: number;
  approvalTimeoutSeconds: number;
}

export interface ActionInput {
  actionId: string;
  tenantId: string;
  action: ActionType;
  /** The directory user the action is done to. */
  subjectId: string;
  /** The Tenure actor who asked. */
  requesterId: string;
  /** What allowed the request (role bindings, request id), recorded with its audit event. */
  authority: Authority;
  justification: string | null;
  ticket: string | null;
  policy: ActionPolicySnapshot;
}

export interface ActionApproval {
  approverId: string;
  approvalId: string;
  at: string;
  comment: string | null;
}

export interface ActionView {
  actionId: string;
  tenantId: string;
  workflowId: string;
  action: ActionType;
  subjectId: string;
  requesterId: string;
  status: ActionStatus;
  justification: string | null;
  ticket: string | null;
  policyVersion: number;
  approvalsRequired: number;
  approvals: ActionApproval[];
  /** Who denied or cancelled it. */
  decidedBy: string | null;
  requestedAt: string;
  /** When a pending approval expires; null when none was needed. */
  approvalExpiresAt: string | null;
  executedAt: string | null;
  /** When reading the target back confirmed the action. */
  verifiedAt: string | null;
  /** The account as read before the action and after it (the evidence of the change). */
  before: DirectoryAccountState | null;
  after: DirectoryAccountState | null;
  /** What the target reported (e.g. sessions ended, factors removed), or why it failed. */
  outcome: string | null;
  /** Increases with every change; the read model keeps only the newest. */
  version: number;
}

/** The view of a request no decision has touched yet: the workflow's first state, and the read model's before it runs. */
export function initialActionView(input: ActionInput, requestedAtMs: number): ActionView {
  const { approvalsRequired, approvalTimeoutSeconds } = input.policy;
  return {
    actionId: input.actionId,
    tenantId: input.tenantId,
    workflowId: actionWorkflowId(input.tenantId, input.actionId),
    action: input.action,
    subjectId: input.subjectId,
    requesterId: input.requesterId,
    status: 'pending_approval',
    justification: input.justification,
    ticket: input.ticket,
    policyVersion: input.policy.policyVersion,
    approvalsRequired,
    approvals: [],
    decidedBy: null,
    requestedAt: new Date(requestedAtMs).toISOString(),
    approvalExpiresAt: approvalsRequired > 0 ? new Date(requestedAtMs + approvalTimeoutSeconds * 1000).toISOString() : null,
    executedAt: null,
    verifiedAt: null,
    before: null,
    after: null,
    outcome: null,
    version: 0,
  };
}

export interface ActionDecision {
  /** The Tenure actor deciding; the API has already checked they may. */
  actorId: string;
  comment?: string | null;
  /** What allowed it (role bindings, request id), recorded with the decision's audit event. */
  authority?: Authority;
}

export const approveActionUpdate = defineUpdate<ActionView, [ActionDecision]>('approve');
export const denyActionUpdate = defineUpdate<ActionView, [ActionDecision]>('deny');
export const cancelActionUpdate = defineUpdate<ActionView, [ActionDecision]>('cancel');
export const actionQuery = defineQuery<ActionView>('action');

/** ApplicationFailure types the validators raise; the use case maps them to HTTP statuses. */
export const ActionRejection = {
  NotApplicable: 'ActionDecisionNotApplicable', // 409: already decided, executing or ended
  SelfApproval: 'ActionSelfApproval', // 403: the requester cannot decide on their own request
  DuplicateApprover: 'ActionDuplicateApprover', // 409
  InvalidInput: 'ActionInvalidInput', // 400
} as const;

/** ApplicationFailure type of an execution the target can never carry out (no such user, a capability it lacks). */
export const ACTION_REFUSED = 'ActionRefused';
/** ApplicationFailure type the verify step raises while the target does not yet show the action done. */
export const ACTION_NOT_CONFIRMED = 'ActionNotConfirmed';

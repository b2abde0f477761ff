import { updateRefusal } from '../update-refusal.js';
import { randomUUID } from 'node:crypto';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { ActionContext } from '../../core/audit/context.js';
import { AppError, badRequest, conflict, forbidden, notFound, toFieldIssues } from '../../core/errors.js';
import { allowingBindings, type Binding, type Principal } from '../../core/tenancy/authz.js';
import {
  approvePolicyChangeUpdate,
  DEFAULT_POLICY_CHANGE_APPROVALS,
  DEFAULT_POLICY_CHANGE_TIMEOUT_DAYS,
  denyPolicyChangeUpdate,
  POLICY_CHANGE_WORKFLOW_TYPE,
  PolicyChangeRejection,
  policyChangeSearchAttributes,
  policyChangeWorkflowId,
  TENANCY_TASK_QUEUE,
  withdrawPolicyChangeUpdate,
  type PolicyChangeDecision,
  type PolicyChangeInput,
  type PolicyChangeStatus,
  type PolicyChangeView,
  type PolicyDiffItem,
} from '../../core/tenancy/contract.js';
import { TenantPolicyDocument } from '../../core/tenancy/schemas.js';
import { deleteUnstartedPolicyChange, listPolicyChangeRows, policyChangeViewOf, upsertPolicyChangeRow } from '../../db/policy-changes.js';
import type { Pool } from '../../db/pool.js';
import { inScope, tenantScope } from '../../db/scope.js';
import { currentPolicy } from '../../db/tenancy.js';
import type { policyChangeWorkflow } from '../../workflows/tenancy/workflow.js';

/** What the policy-change use cases need: the database and Temporal. */
export interface PolicyChangeDeps {
  pool: Pool;
  temporal: Client;
}

/** Keeps a change's history bounded: each approval adds a handful of events. */
export const MAX_POLICY_CHANGE_APPROVALS = 20;

const DAY_SECONDS = 24 * 3600;

/**
 * The quorum and timeout for changes to this policy, from its `governance` section. Read
 * defensively: documents written before that section existed have none, and get the defaults.
 */
export function policyChangeGovernance(document: unknown): { approvalsRequired: number; approvalTimeoutSeconds: number } {
  const governance = (document as { governance?: { policyChangeApprovals?: unknown; policyChangeTimeoutDays?: unknown } } | null)
    ?.governance;
  const approvals = governance?.policyChangeApprovals;
  const days = governance?.policyChangeTimeoutDays;
  return {
    approvalsRequired:
      typeof approvals === 'number' && Number.isInteger(approvals) && approvals >= 1 ? approvals : DEFAULT_POLICY_CHANGE_APPROVALS,
    approvalTimeoutSeconds: Math.round((typeof days === 'number' && days > 0 ? days : DEFAULT_POLICY_CHANGE_TIMEOUT_DAYS) * DAY_SECONDS),
  };
}

export interface PolicyChangeProposal {
  /** The policy version the proposer read; a newer current version makes the proposal 409. */
  baseVersion: number;
  /** The whole proposed document. */
  document: unknown;
  /** The classified diff against the base version (classifyPolicyChange). */
  diff: PolicyDiffItem[];
  comment?: string | null;
  requestId?: string | null;
}

/**
 * Starts the approval workflow for a change that loosens the tenant's control: nothing is written
 * to the policy until the tenant's approvers reach the quorum of its current policy. The read-model
 * row commits before the start, so the change can be shown at once; a start that fails takes it back.
 */
export async function proposePolicyChange(
  deps: PolicyChangeDeps,
  ctx: ActionContext,
  tenantId: string,
  proposal: PolicyChangeProposal,
): Promise<PolicyChangeView> {
  const parsed = TenantPolicyDocument.safeParse(proposal.document);
  if (!parsed.success) throw badRequest('The proposed policy is not valid.', toFieldIssues(parsed.error, 'body.document'));
  const changeId = randomUUID();
  const workflowId = policyChangeWorkflowId(tenantId, changeId);

  const { input, view } = await inScope(deps.pool, tenantScope(tenantId), async (client) => {
    const current = await currentPolicy(client, tenantId);
    if (!current) throw notFound('tenant');
    if (current.version !== proposal.baseVersion) {
      throw conflict(`The policy is at version ${current.version}, not ${proposal.baseVersion}; re-read it and propose your change again.`);
    }
    const governance = policyChangeGovernance(current.document);
    if (governance.approvalsRequired > MAX_POLICY_CHANGE_APPROVALS) {
      throw badRequest(`The tenant policy asks for more than ${MAX_POLICY_CHANGE_APPROVALS} approvals of a policy change.`, [
        { path: 'governance.policyChangeApprovals', message: `at most ${MAX_POLICY_CHANGE_APPROVALS}` },
      ]);
    }
    const input: PolicyChangeInput = {
      changeId,
      tenantId,
      proposer: ctx.actor,
      authority: ctx.authority,
      baseVersion: current.version,
      document: parsed.data,
      diff: proposal.diff,
      ...governance,
      comment: proposal.comment ?? null,
      requestId: proposal.requestId ?? null,
    };
    const now = Date.now();
    const view: PolicyChangeView = {
      changeId,
      tenantId,
      workflowId,
      status: 'pending',
      proposerId: ctx.actor.id,
      baseVersion: current.version,
      appliedVersion: null,
      diff: proposal.diff,
      approvalsRequired: governance.approvalsRequired,
      approvals: [],
      deniedBy: null,
      withdrawnBy: null,
      comment: input.comment,
      reason: null,
      proposedAt: new Date(now).toISOString(),
      expiresAt: new Date(now + governance.approvalTimeoutSeconds * 1000).toISOString(),
      decidedAt: null,
      version: 0,
    };
    await upsertPolicyChangeRow(client, view);
    return { input, view };
  });

  try {
    await deps.temporal.workflow.start<typeof policyChangeWorkflow>(POLICY_CHANGE_WORKFLOW_TYPE, {
      taskQueue: TENANCY_TASK_QUEUE,
      workflowId,
      args: [input],
      typedSearchAttributes: policyChangeSearchAttributes(tenantId),
    });
  } catch (error) {
    // Nobody would run a pending change whose workflow never started. Should the start have
    // reached Temporal after all, the workflow's first event writes the row again.
    await inScope(deps.pool, tenantScope(tenantId), (client) => deleteUnstartedPolicyChange(client, tenantId, changeId)).catch(
      () => undefined,
    );
    throw error;
  }
  return view;
}

export async function getPolicyChange(pool: Pool, tenantId: string, changeId: string): Promise<PolicyChangeView> {
  return inScope(pool, tenantScope(tenantId), async (client) => {
    const view = await policyChangeViewOf(client, tenantId, changeId);
    if (!view) throw notFound('policy change');
    return view;
  });
}

/** A tenant's changes, newest first; `status: 'pending'` gives those waiting beside the current policy. */
export async function listPolicyChanges(
  pool: Pool,
  tenantId: string,
  filter: { status?: PolicyChangeStatus; limit?: number } = {},
): Promise<PolicyChangeView[]> {
  return inScope(pool, tenantScope(tenantId), (client) =>
    listPolicyChangeRows(client, tenantId, { ...(filter.status ? { status: filter.status } : {}), limit: filter.limit ?? 100 }),
  );
}

export type PolicyChangeDecisionKind = 'approve' | 'deny' | 'withdraw';

/**
 * Who may decide, before the workflow's validator has its say; returns the bindings that allowed
 * it, for the audit trail. The tenant decides: only its own approvers, bound in this tenant.
 * The proposer, or an MSP admin, may withdraw.
 */
export function authorizePolicyChangeDecision(
  principal: Principal,
  tenantId: string,
  decision: PolicyChangeDecisionKind,
  change: PolicyChangeView,
): Binding[] {
  if (decision === 'withdraw') {
    const admins = principal.bindings.filter((b) => b.role === 'msp_admin' && (b.tenantId === null || b.tenantId === tenantId));
    if (principal.actorId !== change.proposerId && admins.length === 0)
      throw forbidden('Only the proposer or an MSP admin may withdraw a policy change.');
    return admins;
  }
  // Bound in this tenant, and never MSP staff: a binding made before that rule must not decide either.
  const approvers =
    principal.kind === 'msp_staff' ? [] : allowingBindings(principal, 'policy.decide', tenantId).filter((b) => b.tenantId === tenantId);
  if (approvers.length === 0) {
    throw forbidden('Only a tenant_approver of this tenant (its own staff) may decide on its policy changes; MSP staff never do.');
  }
  return approvers;
}

const UPDATES = {
  approve: approvePolicyChangeUpdate,
  deny: denyPolicyChangeUpdate,
  withdraw: withdrawPolicyChangeUpdate,
} as const;

/**
 * Sends a decision as a Temporal Update; the validator's rejection becomes a 4xx. An approval
 * that completes the quorum answers once the change is applied or conflicted (status `conflicted`:
 * the policy moved on, nothing was written; the API answers that with 409).
 */
export async function decidePolicyChange(
  deps: PolicyChangeDeps,
  tenantId: string,
  changeId: string,
  decision: PolicyChangeDecisionKind,
  args: PolicyChangeDecision,
): Promise<PolicyChangeView> {
  const handle = deps.temporal.workflow.getHandle(policyChangeWorkflowId(tenantId, changeId));
  try {
    return await handle.executeUpdate(UPDATES[decision], {
      args: [{ actorId: args.actorId, comment: args.comment ?? null, authority: args.authority ?? {} }],
    });
  } catch (error) {
    const refusal = updateRefusal(error, {
      [PolicyChangeRejection.SelfApproval]: forbidden,
      [PolicyChangeRejection.NotTenantApprover]: forbidden,
      [PolicyChangeRejection.Unavailable]: (message) => new AppError(503, 'unavailable', message),
      [PolicyChangeRejection.InvalidInput]: (message) => badRequest(message),
    });
    if (refusal) throw refusal;
    // A finished workflow accepts no updates: the decision no longer applies.
    if (error instanceof WorkflowNotFoundError) {
      const status = await getPolicyChange(deps.pool, tenantId, changeId).then(
        (view) => view.status,
        () => undefined,
      );
      if (status === undefined) throw notFound('policy change');
      throw conflict(`The change is ${status === 'pending' ? 'no longer open' : status}; this decision no longer applies.`);
    }
    throw error;
  }
}

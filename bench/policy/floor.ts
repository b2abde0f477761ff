import { randomUUID } from 'node:crypto';
import type { Client } from '@temporalio/client';
import type { Activities } from '../../activities/index.js';
import type { ActionContext } from '../../core/audit/context.js';
import {
  approvePolicyChangeUpdate,
  POLICY_CHANGE_WORKFLOW_TYPE,
  policyChangeSearchAttributes,
  policyChangeWorkflowId,
  type PolicyChangeInput,
  type PolicyChangeView,
} from '../../core/tenancy/contract.js';
import type { TenantPolicyDocument } from '../../core/tenancy/schemas.js';
import type { policyChangeWorkflow } from '../../workflows/tenancy/workflow.js';

/** The policy-change activities with no side effects, answering in the shapes the workflow expects. */
export const noopPolicyChangeActivities = {
  recordPolicyChangeEvent: async () => ({ seq: 0, notify: false }),
  applyPolicyChange: async ({ view }) => ({ status: 'applied', appliedVersion: view.baseVersion + 1, reason: null, notify: false }),
  notifyPolicyChange: async () => ({ delivered: false, reason: 'floor' }),
} satisfies Pick<Activities, 'recordPolicyChangeEvent' | 'applyPolicyChange' | 'notifyPolicyChange'>;

/**
 * The floor's proposal: the input proposePolicyChange builds, started the way it starts it, with
 * no read-model row, diff or version check.
 */
export async function floorPropose(
  client: Client,
  taskQueue: string,
  proposer: ActionContext,
  change: { tenantId: string; baseVersion: number; document: TenantPolicyDocument },
): Promise<string> {
  const input: PolicyChangeInput = {
    changeId: randomUUID(),
    tenantId: change.tenantId,
    proposer: proposer.actor,
    authority: proposer.authority,
    baseVersion: change.baseVersion,
    document: change.document,
    diff: [],
    approvalsRequired: 1,
    approvalTimeoutSeconds: 7 * 24 * 3600,
    comment: null,
    requestId: null,
  };
  const workflowId = policyChangeWorkflowId(change.tenantId, input.changeId);
  await client.workflow.start<typeof policyChangeWorkflow>(POLICY_CHANGE_WORKFLOW_TYPE, {
    taskQueue,
    workflowId,
    args: [input],
    typedSearchAttributes: policyChangeSearchAttributes(change.tenantId),
  });
  return workflowId;
}

/** The floor's approval: the same Update the use case sends. */
export function floorApprove(client: Client, workflowId: string, actorId: string): Promise<PolicyChangeView> {
  return client.workflow
    .getHandle(workflowId)
    .executeUpdate(approvePolicyChangeUpdate, { args: [{ actorId, comment: null, authority: {} }] });
}
